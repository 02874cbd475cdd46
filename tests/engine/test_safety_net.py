"""No silent miss: records shaped the way EHRs send them, whose codes are in no value set, are
read by their words (the safety net, drug ingredient names, text patterns with assertion
context), and data errors in dates err toward review. Each case is a record pattern written
for itself, not taken from a corpus."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from factories import (
    ICD10CM,
    RXNORM,
    SNOMED,
    bundle,
    condition,
    days_before,
    finding,
    medication_request,
    outcome,
    patient,
)
from msc_screen.api import load_records
from msc_screen.engine import evaluate
from msc_screen.engine.coverage import complete_kinds, declare_complete
from msc_screen.engine.safety_net import safety_net
from msc_screen.fhir.reader import read_source
from msc_screen.fhir.record import RecordBuilder
from msc_screen.knowledge import get_ruleset
from msc_screen.knowledge.loader import package_root
from msc_screen.knowledge.ruleset import get_knowledge_base
from msc_screen.model import Assessment, Coding
from msc_screen.terminology.systems import system_key

AS_OF = days_before(0)
NDC = "http://hl7.org/fhir/sid/ndc"
LOCAL = "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268"  # an Epic-style local code system


def _screen(*resources: dict[str, Any], filtered: bool = False, root: Path | None = None,
            pat: dict[str, Any] | None = None, complete: str | None = "all") -> Assessment:
    """Screen through the reader as a door does: whole records (web app) or filtered to what
    the ruleset reads (CLI, API, batch). Both must give the same assessment."""
    rs = get_ruleset(None, root)
    if filtered:
        b = RecordBuilder.for_ruleset(rs)
        for r in read_source(bundle(*resources, pat=pat)):
            b.add(r)
        records, errors = b.finish(), b.errors
    else:
        records, errors = load_records(bundle(*resources, pat=pat))
    assert not errors, errors
    assert len(records) == 1
    declare_complete(records, complete_kinds(rs, complete))  # the whole chart, by default
    return evaluate(records[0], rs, AS_OF, None)


def _both(*resources: dict[str, Any], **kw: Any) -> Assessment:
    whole = _screen(*resources, **kw)
    assert _screen(*resources, filtered=True, **kw).to_json() == whole.to_json()
    return whole


def _in_no_value_set(system: str, code: str) -> None:
    rs = get_ruleset()
    key = system_key(system)
    for vss in rs.valuesets_by_kind(enders=True).values():
        for vs in vss:
            assert not vs.contains(key, code), f"{code} is in {vs.id}: pick another test code"


def _coded(code: str, system: str = SNOMED, display: str | None = None, **kw: Any
           ) -> dict[str, Any]:
    c = condition(code, system, **kw)
    if display:
        c["code"]["coding"][0]["display"] = display
    return c


# A SNOMED CT identifier no value set lists (checked in each test that uses it): what a newer
# SNOMED edition or a generator's descendant concept looks like to the engine.
UNLISTED = "999990000000101"


# ----------------------------------------------------------------------------- safety net


def test_coded_record_in_no_value_set_is_read_by_its_display() -> None:
    _in_no_value_set(SNOMED, UNLISTED)
    a = _both(_coded(UNLISTED, display="Primary malignant neoplasm of colon (disorder)",
                     onset="2024-01-01"))
    assert outcome(a, "active-malignancy") == ("present", "physician-review")
    assert a.decision == "physician-review"
    ev = finding(a, "active-malignancy").evidence[0]
    assert ev.uncertain is not None
    assert f"SNOMED CT {UNLISTED} is in no value set" in ev.uncertain
    assert "«malignant neoplasm»" in ev.uncertain
    assert ev.code is not None and ev.code.code == UNLISTED
    assert "for review" in finding(a, "active-malignancy").summary
    # resolved: the history rule reads it, the active rule does not
    r = _both(_coded(UNLISTED, display="Primary malignant neoplasm of colon (disorder)",
                     onset="2015-01-01", abatement="2016-06-01", clinical="resolved"))
    assert outcome(r, "active-malignancy")[0] == "absent"
    assert outcome(r, "history-of-malignancy") == ("present", "physician-review")


def test_several_codings_the_value_set_code_decides() -> None:
    c = condition("C18.9", ICD10CM, onset="2024-01-01")
    c["code"]["coding"] = [
        {"system": SNOMED, "code": UNLISTED, "display": "Primary malignant neoplasm of colon"},
        {"system": ICD10CM, "code": "C18.9", "display": "Malignant neoplasm of colon, unsp."},
        {"system": LOCAL, "code": "ONC-17", "display": "Colon ca"},
    ]
    a = _both(c)
    f = finding(a, "active-malignancy")
    assert (f.status, f.severity) == ("present", "contraindicated")
    assert f.evidence[0].code is not None and f.evidence[0].code.code == "C18.9"
    assert f.evidence[0].uncertain is None


def test_local_code_read_by_its_display() -> None:
    c = condition("ONC-17", LOCAL, onset="2024-01-01")
    c["code"]["coding"][0]["display"] = "Adenocarcinoma of sigmoid colon"
    a = _both(c)
    # no code in a known system: the value set's text patterns read the display
    assert outcome(a, "active-malignancy")[0] == "present"


@pytest.mark.parametrize(("display", "rule"), [
    ("Possible lymphoma of stomach", "active-malignancy"),
    ("Rule out pneumonia", "active-infection"),
])
def test_uncertain_words_are_unknown_never_absent(display: str, rule: str) -> None:
    """A record that states its concept with uncertainty is a question, not a finding."""
    _in_no_value_set(SNOMED, UNLISTED)
    a = _both(_coded(UNLISTED, display=display, onset=days_before(10)))
    f = finding(a, rule)
    assert (f.status, f.severity) == ("unknown", "needs-information")
    assert "uncertainty" in f.summary and UNLISTED in f.summary
    assert f.evidence[0].code is not None and f.evidence[0].code.code == UNLISTED


@pytest.mark.parametrize(("display", "rules"), [
    ("Screening for malignant neoplasm of colon", ["active-malignancy", "history-of-malignancy"]),
    ("Family history of malignant neoplasm of breast",
     ["active-malignancy", "history-of-malignancy"]),
    ("No evidence of malignancy", ["active-malignancy", "history-of-malignancy"]),
    # historical where the rule wants something current
    ("History of myocardial infarction", ["recent-myocardial-infarction"]),
    ("History of sepsis", ["active-infection"]),
])
def test_net_does_not_fire_on_negated_family_screening_or_history(display: str,
                                                                  rules: list[str]) -> None:
    _in_no_value_set(SNOMED, UNLISTED)
    a = _both(_coded(UNLISTED, display=display, onset=days_before(10)))
    for rule in rules:
        assert outcome(a, rule)[0] == "absent", rule
    assert a.decision not in ("contraindicated", "physician-review")


def test_history_counts_where_the_rule_reads_history() -> None:
    _in_no_value_set(SNOMED, UNLISTED)
    a = _both(_coded(UNLISTED, display="History of malignant neoplasm of breast (situation)",
                     onset="2020-01-01"))
    assert outcome(a, "active-malignancy")[0] == "absent"
    assert outcome(a, "history-of-malignancy") == ("present", "physician-review")


def test_net_applies_only_to_criteria_that_raise_concern() -> None:
    # a hysterectomy in words (procedure in no value set) must not clear pregnancy-status
    _in_no_value_set(SNOMED, UNLISTED)
    p = {"resourceType": "Procedure", "id": "p1", "status": "completed",
         "subject": {"reference": "Patient/p1"}, "performedDateTime": "2010-01-01",
         "code": {"coding": [{"system": SNOMED, "code": UNLISTED,
                              "display": "Total abdominal hysterectomy"}]}}
    a = _both(p)
    assert outcome(a, "pregnancy-status-unknown")[0] == "unknown"


def test_reviewed_code_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    shutil.copytree(package_root(), root)
    (root / "terminology" / "reviewed-codes.yaml").write_text(
        "codes:\n"
        f"  - {{system: snomed, code: '{UNLISTED}', display: 'Tumor lysis syndrome screen',\n"
        "     reason: 'a laboratory order set, not a diagnosis', reviewed: '2026-12-02'}\n")
    res = _coded(UNLISTED, display="Malignant tumor lysis screening panel", onset="2024-01-01")
    assert get_knowledge_base(root).reviewed_codes[0].code == UNLISTED
    a = _both(res, root=root)
    assert outcome(a, "active-malignancy")[0] == "absent"
    b = _both(res)  # the packaged knowledge base has not reviewed it
    assert outcome(b, "active-malignancy")[0] == "present"


def test_unnamed_code_in_no_value_set_warns() -> None:
    m = medication_request("0000-0000-00", NDC, authored=days_before(10))
    a = _both(m)
    assert any("NDC 0000-0000-00 is in no value set and has no name" in w
               for w in a.warnings), a.warnings


# ------------------------------------------------------------------ drugs by ingredient name


def _med(coding: list[dict[str, str]] | None = None, text: str | None = None, **kw: Any
         ) -> dict[str, Any]:
    m = medication_request("x", RXNORM, authored=days_before(20), **kw)
    cc: dict[str, Any] = {}
    if coding:
        cc["coding"] = coding
    if text:
        cc["text"] = text
    m["medicationCodeableConcept"] = cc
    return m


@pytest.mark.parametrize(("coding", "text", "rule", "ingredient"), [
    ([{"system": RXNORM, "code": "9990001",  # a product code no value set lists
       "display": "0.4 ML Enoxaparin sodium 100 MG/ML Prefilled Syringe [Lovenox]"}], None,
     "thrombotic-risk", "enoxaparin"),
    ([{"system": NDC, "code": "0469-0607-73", "display": "tacrolimus 1 MG Oral Capsule"}], None,
     "immune-disorder", "tacrolimus"),
    ([{"system": LOCAL, "code": "ERX-4410"}], "CARBOplatin 450 mg in NS 250 mL IVPB",
     "active-malignancy", "carboplatin"),
    (None, "heparin 5,000 units subcut q8h", "thrombotic-risk", "heparin"),
])
def test_medication_matched_by_ingredient(coding: list[dict[str, str]] | None,
                                          text: str | None, rule: str, ingredient: str) -> None:
    for c in coding or ():
        _in_no_value_set(c["system"], c["code"])
    a = _both(_med(coding, text))
    f = finding(a, rule)
    assert f.status == "present"
    assert f.severity != "recommendation"
    assert f"«{ingredient}»" in (f.evidence[0].detail or "")
    assert f.evidence[0].uncertain is None  # a named ingredient is a match, not a guess


def test_product_code_from_a_published_value_set_matches_by_code() -> None:
    a = _both(_med([{"system": RXNORM, "code": "854235",
                     "display": "0.4 ML Enoxaparin sodium 100 MG/ML Prefilled Syringe"}]))
    f = finding(a, "thrombotic-risk")
    assert f.status == "present"
    assert "ingredient" not in (f.evidence[0].detail or "")  # the code itself is listed


def test_cancer_drug_with_other_uses_is_review() -> None:
    a = _both(_med([{"system": RXNORM, "code": "105586",
                     "display": "methotrexate 2.5 MG Oral Tablet"}]))
    assert outcome(a, "active-malignancy") == ("present", "physician-review")
    assert outcome(a, "immune-disorder") == ("present", "physician-review")
    b = _both(_med([{"system": RXNORM, "code": "1736776",
                     "display": "10 ML oxaliplatin 5 MG/ML Injection"}]))
    assert outcome(b, "active-malignancy") == ("present", "contraindicated")


def _with_reference(reference: str, medication: dict[str, Any], contained: bool
                    ) -> list[dict[str, Any]]:
    m = medication_request(None, authored=days_before(20))
    del m["medicationCodeableConcept"]
    m["medicationReference"] = {"reference": reference}
    if contained:
        m["contained"] = [medication]
        return [m]
    return [m, medication]


@pytest.mark.parametrize("contained", [True, False])
def test_medication_reference_to_a_medication(contained: bool) -> None:
    _in_no_value_set(NDC, "0078-0240-15")
    med = {"resourceType": "Medication", "id": "med1",
           "code": {"coding": [{"system": NDC, "code": "0078-0240-15",
                                "display": "cyclosporine 100 MG Oral Capsule [Neoral]"}]}}
    ref = "#med1" if contained else "Medication/med1"
    a = _both(*_with_reference(ref, med, contained))
    assert outcome(a, "immune-disorder")[0] == "present"
    assert "«cyclosporine»" in (finding(a, "immune-disorder").evidence[0].detail or "")


def test_aspirin_is_not_an_anticoagulant() -> None:
    a = _both(_med([{"system": RXNORM, "code": "243670", "display": "Aspirin 81 MG Oral Tablet"}]))
    assert outcome(a, "thrombotic-risk")[0] == "absent"


# ----------------------------------------------------------- text patterns with assertion


@pytest.mark.parametrize(("text", "status"), [
    ("Breast cancer", "present"),
    ("Fibroadenoma, no evidence of malignancy", "absent"),
    ("Family history of breast cancer", "absent"),
    ("Screening for colon cancer", "absent"),
    ("Rule out lymphoma", "unknown"),
])
def test_uncoded_text_read_with_assertion_context(text: str, status: str) -> None:
    a = _both(condition(None, text=text, onset="2024-01-01"))
    assert outcome(a, "active-malignancy")[0] == status


def test_uncoded_history_of_cancer_is_history_not_active() -> None:
    a = _both(condition(None, text="History of breast cancer", onset="2015-01-01"))
    assert outcome(a, "active-malignancy")[0] == "absent"
    assert outcome(a, "history-of-malignancy")[0] == "present"


# ----------------------------------------------------------------- data errors toward review


def test_abatement_before_onset_is_not_resolved() -> None:
    a = _both(condition("C18.9", ICD10CM, onset="2024-03-01", abatement="2023-01-01",
                        clinical="resolved"))
    f = finding(a, "active-malignancy")
    assert (f.status, f.severity) == ("present", "physician-review")
    assert "before onset" in (f.evidence[0].uncertain or "")
    assert outcome(a, "history-of-malignancy")[0] == "absent"


def test_active_status_contradicting_a_past_abatement_is_review() -> None:
    a = _both(condition("C18.9", ICD10CM, onset="2020-03-01", abatement="2021-01-01",
                        clinical="active"))
    f = finding(a, "active-malignancy")
    assert (f.status, f.severity) == ("present", "physician-review")
    assert "contradicts" in (f.evidence[0].uncertain or "")


def test_onset_after_the_recorded_date_is_review() -> None:
    onset = days_before(-40)  # 40 days after the as-of date
    a = _both(condition("C18.9", ICD10CM, onset=onset, recorded=days_before(5)))
    f = finding(a, "active-malignancy")
    assert (f.status, f.severity) == ("present", "physician-review")
    assert "after the date it was recorded" in (f.evidence[0].uncertain or "")
    # a condition recorded after the as-of date is still not known on it
    later = _both(condition("C18.9", ICD10CM, onset=onset, recorded=onset))
    assert outcome(later, "active-malignancy")[0] == "absent"


def test_male_patient_shape_unchanged_by_the_net() -> None:
    # the net must not make sex-limited rules fire for someone they do not apply to
    _in_no_value_set(SNOMED, UNLISTED)
    a = _both(_coded(UNLISTED, display="Normal pregnancy", onset=days_before(30)),
              pat=patient(gender="male"))
    assert outcome(a, "pregnancy")[0] == "absent"


def test_shipped_reviewed_codes_are_left_alone_and_say_why() -> None:
    """Each code on the shipped reviewed list names its reason, and the net leaves it alone
    although its words name a rule's concept (chronic sinusitis names an infection)."""
    kb = get_knowledge_base()
    assert kb.reviewed_codes, "the shipped list is empty"
    for rc in kb.reviewed_codes:
        assert len(rc.reason.split()) >= 6, rc.code
    a = _both(_coded("40055000", display="Chronic sinusitis (disorder)", onset=days_before(10)))
    assert outcome(a, "active-infection")[0] == "absent"
    sinusitis = (Coding("snomed", "40055000", "Chronic sinusitis (disorder)"),)
    assert safety_net(get_ruleset()).classify("condition", sinusitis, None) == ("reviewed", ())


@pytest.mark.parametrize(("code", "system"), [("K35.80", ICD10CM), ("74400008", SNOMED)])
def test_acute_appendicitis_is_a_systemic_infection(code: str, system: str) -> None:
    a = _both(condition(code, system, onset=days_before(3)))
    assert outcome(a, "active-infection") == ("present", "contraindicated")
