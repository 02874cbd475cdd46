"""The reader's record filter (``CompiledRuleset.record_filters``) only skips records no rule can
read: findings and decisions are the same as from whole records, and what it keeps is exact."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from hypothesis import given

from msc_screen.api import default_notes_extractor
from msc_screen.engine import evaluate
from msc_screen.fhir.reader import read_source
from msc_screen.fhir.record import RecordBuilder
from msc_screen.knowledge import get_ruleset
from msc_screen.model import PatientRecord

from .test_properties import AS_OF, SETTINGS, patients

SNOMED = "http://snomed.info/sct"


def _records(source: Any, ruleset: Any) -> list[PatientRecord]:
    b = RecordBuilder.for_ruleset(ruleset) if ruleset is not None else RecordBuilder()
    for r in read_source(source):
        b.add(r)
    assert not b.errors
    return b.finish()


def _same_screening(source: Any, days: tuple[dt.date, ...], policy: str | None = None) -> int:
    """Screens ``source`` from filtered and from whole records; returns records skipped."""
    rs = get_ruleset(policy)
    notes = default_notes_extractor()
    whole, kept = _records(source, None), _records(source, rs)
    assert [r.id for r in whole] == [r.id for r in kept]
    skipped = 0
    for w, k in zip(whole, kept, strict=True):
        for kind in ("conditions", "observations", "medications", "procedures", "allergies"):
            w_items, k_items = getattr(w, kind), getattr(k, kind)
            assert all(it in w_items for it in k_items)
            skipped += len(w_items) - len(k_items)
        for day in days:
            a, b = evaluate(w, rs, day, notes), evaluate(k, rs, day, notes)
            assert a.to_json() == b.to_json()  # warnings included
    return skipped


@SETTINGS
@given(patients())
def test_filter_never_changes_a_finding(res: list[dict[str, Any]]) -> None:
    for policy in (None, "conservative"):
        _same_screening(res, (AS_OF,), policy)


def test_filter_agrees_on_demo_and_synthea_patients(synthea_dir: Path) -> None:
    from msc_screen.synth.demo import build_demo

    sources: list[Any] = [p.resources for p in build_demo(dt.date(2019, 1, 1))]
    sources += sorted(synthea_dir.glob("*.json*"))[:40]
    skipped = 0
    for src in sources:
        skipped += _same_screening(src, (dt.date(2012, 1, 1), dt.date(2019, 1, 1)))
    assert skipped > 1000  # Synthea charts are mostly records no rule reads


def _patient(*resources: dict[str, Any]) -> list[dict[str, Any]]:
    pat = {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1990-01-01"}
    return [pat, *({"subject": {"reference": "Patient/p"}, **r} for r in resources)]


def test_what_the_filter_keeps() -> None:
    rs = get_ruleset()
    res = _patient(
        {"resourceType": "Condition", "id": "sprain",  # no rule reads ankle sprains
         "code": {"coding": [{"system": SNOMED, "code": "44465007",
                              "display": "Sprain of ankle"}]}},
        {"resourceType": "Condition", "id": "unnamed",  # in no value set and without a name:
         "code": {"coding": [{"system": SNOMED, "code": "44465007"}]}},  # kept, to warn
        {"resourceType": "Condition", "id": "mi",
         "code": {"coding": [{"system": SNOMED, "code": "22298006"}]}},
        {"resourceType": "Condition", "id": "mi-icd",  # by ICD-10-CM hierarchy (I21.-)
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I21.4"}]}},
        {"resourceType": "Condition", "id": "uncoded", "code": {"text": "heart attack"}},
        {"resourceType": "Condition", "id": "nocode"},
        {"resourceType": "Condition", "id": "local",  # a local code system: text may match
         "code": {"coding": [{"system": "urn:local", "code": "X1"}]}},
        {"resourceType": "MedicationRequest", "id": "amlodipine", "status": "active",
         "medicationCodeableConcept": {"coding": [{
             "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361",
             "display": "Amlodipine 5 MG Oral Tablet"}]}},
        {"resourceType": "MedicationRequest", "id": "enoxaparin", "status": "active",
         "medicationCodeableConcept": {"coding": [{  # a product code: read by its ingredient
             "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "854235",
             "display": "0.4 ML Enoxaparin sodium 100 MG/ML Prefilled Syringe"}]}},
        {"resourceType": "Condition", "id": "net",  # in no value set; its words name cancer
         "code": {"coding": [{"system": SNOMED, "code": "999990000000101",
                              "display": "Primary malignant neoplasm of colon"}]}},
    )
    rec = _records(res, rs)[0]
    assert sorted(c.reference for c in rec.conditions) == [
        "Condition/local", "Condition/mi", "Condition/mi-icd", "Condition/net",
        "Condition/uncoded", "Condition/unnamed"]
    assert [m.reference for m in rec.medications] == ["MedicationRequest/enoxaparin"]
    assert any("Condition/nocode has no code" in w for w in rec.warnings)
    whole = _records(res, None)[0]
    assert len(whole.conditions) == 7 and len(whole.medications) == 2
    _same_screening(res, (AS_OF,))


def test_a_record_no_rule_reads_still_warns_as_it_would_unfiltered() -> None:
    """Filtering must not change what any door says: an onset given only as text warns
    whether or not the ruleset's filter drops the record."""
    res = _patient({"resourceType": "Condition", "id": "sprain", "onsetString": "as a child",
                    "code": {"coding": [{"system": SNOMED, "code": "44465007",
                                         "display": "Sprain of ankle"}]}})
    kept, whole = _records(res, get_ruleset())[0], _records(res, None)[0]
    assert kept.conditions == [] and len(whole.conditions) == 1
    assert kept.warnings == whole.warnings
    assert any("onset recorded only as text" in w for w in kept.warnings)
    _same_screening(res, (AS_OF,))


def test_a_delivery_that_ends_a_pregnancy_is_kept() -> None:
    """``ended_by`` value sets are read too: the delivery must reach the pregnancy rule."""
    rs = get_ruleset()
    enders = {v.id for r in rs.rules for c in (*r.present_if, *r.unknown_if, *r.absent_if)
              for v in c.ended_by}
    assert enders
    filters = rs.record_filters
    for vid in enders:
        vs = rs.kb.valuesets[vid]
        for inc in vs.include:
            for ce in inc.codes:
                from msc_screen.terminology.systems import system_key

                key = system_key(inc.system) or inc.system
                assert filters["condition"].wants(key, ce.code)
                assert filters["procedure"].wants(key, ce.code)
