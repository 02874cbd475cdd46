"""Engine invariants, property-based: determinism, order independence, and that adding a
present contraindication never lowers the decision."""

from __future__ import annotations

import copy
import datetime as dt
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msc_screen import screen

DECISION_RANK = {"contraindicated": 0, "physician-review": 1, "needs-information": 2,
                 "no-contraindication-found": 3}

# A pool mixing trigger codes of several rules with irrelevant ones.
SNOMED_POOL = ["72892002", "22298006", "233604007", "254637007", "444814009", "38341003",
               "4557003", "91302008", "69896004", "15777000", "10509002", "399211009"]
ICD_POOL = ["O09.90", "I21.4", "C50.911", "J18.9", "Z85.3", "E11.9", "I10", "D61.01", "I26.99"]
STATUSES = ["active", "recurrence", "relapse", "inactive", "remission", "resolved", None]
VERIF = ["confirmed", "unconfirmed", "provisional", "refuted", "entered-in-error", None]
AS_OF = dt.date(2020, 6, 1)


# SNOMED CT identifiers no value set lists, with the words a record might carry: what the
# safety net reads (affirmed, historical, uncertain, a relative's, irrelevant, or no words).
NET_POOL = [("999990000000101", "Primary malignant neoplasm of colon"),
            ("999990000000102", "History of sepsis"),
            ("999990000000103", "Rule out pneumonia"),
            ("999990000000104", "Sprain of ankle"),
            ("999990000000105", "Family history of breast cancer"),
            ("999990000000106", None)]
# drugs by product code: named ingredients of several classes, and an unrelated drug
MED_POOL = [("854235", "0.4 ML Enoxaparin sodium 100 MG/ML Prefilled Syringe"),
            ("197361", "Amlodipine 5 MG Oral Tablet"),
            ("105586", "methotrexate 2.5 MG Oral Tablet"),
            ("1736776", "10 ML oxaliplatin 5 MG/ML Injection"),
            ("42316", None)]


@st.composite
def conditions(draw: Any, idx: int) -> dict[str, Any]:
    pool = draw(st.integers(0, 2))
    display = None
    if pool == 2:
        code, display = draw(st.sampled_from(NET_POOL))
    else:
        code = draw(st.sampled_from(ICD_POOL if pool == 0 else SNOMED_POOL))
    system = "http://hl7.org/fhir/sid/icd-10-cm" if pool == 0 else "http://snomed.info/sct"
    onset = AS_OF - dt.timedelta(days=draw(st.integers(-30, 3000)))
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    r: dict[str, Any] = {"resourceType": "Condition", "id": f"c{idx}",
                         "subject": {"reference": "Patient/p"},
                         "code": {"coding": [coding]}}
    if draw(st.booleans()):
        r["onsetDateTime"] = onset.isoformat()
    cs = draw(st.sampled_from(STATUSES))
    if cs:
        r["clinicalStatus"] = {"coding": [{"code": cs}]}
    vs = draw(st.sampled_from(VERIF))
    if vs:
        r["verificationStatus"] = {"coding": [{"code": vs}]}
    if draw(st.integers(0, 3)) == 0:
        r["abatementDateTime"] = (onset + dt.timedelta(days=draw(st.integers(0, 400)))).isoformat()
    return r


@st.composite
def observations(draw: Any, idx: int) -> dict[str, Any]:
    code = draw(st.sampled_from(["2857-1", "2039-6", "82810-3", "2106-3", "718-7"]))
    r: dict[str, Any] = {
        "resourceType": "Observation", "id": f"o{idx}", "status": draw(
            st.sampled_from(["final", "preliminary", "amended", "cancelled"])),
        "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": (AS_OF - dt.timedelta(days=draw(st.integers(-5, 400)))).isoformat(),
    }
    if draw(st.booleans()):
        r["valueQuantity"] = {"value": draw(st.floats(0, 50, allow_nan=False)), "unit": "ng/mL"}
        if draw(st.booleans()):
            r["referenceRange"] = [{"high": {"value": 4.0}}]
    else:
        r["valueCodeableConcept"] = {"coding": [{"system": "http://snomed.info/sct", "code":
                                                 draw(st.sampled_from(["10828004", "260385009",
                                                                       "77386006"]))}]}
    return r


@st.composite
def medications(draw: Any, idx: int) -> dict[str, Any]:
    code, display = draw(st.sampled_from(MED_POOL))
    coding = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}
    if display:
        coding["display"] = display
    return {"resourceType": "MedicationRequest", "id": f"m{idx}", "intent": "order",
            "status": draw(st.sampled_from(["active", "stopped", "completed"])),
            "subject": {"reference": "Patient/p"},
            "medicationCodeableConcept": {"coding": [coding]},
            "authoredOn": (AS_OF - dt.timedelta(days=draw(st.integers(-5, 400)))).isoformat()}


@st.composite
def patients(draw: Any) -> list[dict[str, Any]]:
    pat: dict[str, Any] = {"resourceType": "Patient", "id": "p",
                           "gender": draw(st.sampled_from(["female", "male", "other"])),
                           "birthDate": (AS_OF - dt.timedelta(days=365 * draw(
                               st.integers(5, 90)) + draw(st.integers(0, 364)))).isoformat()}
    n_c = draw(st.integers(0, 6))
    n_o = draw(st.integers(0, 4))
    res = [pat]
    res += [draw(conditions(i)) for i in range(n_c)]
    res += [draw(observations(i)) for i in range(n_o)]
    res += [draw(medications(i)) for i in range(draw(st.integers(0, 2)))]
    return res


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(patients(), st.randoms(use_true_random=False))
def test_order_of_resources_never_changes_output(res: list[dict[str, Any]],
                                                 rnd: random.Random) -> None:
    a = screen(res, as_of=AS_OF).to_json()
    shuffled = copy.deepcopy(res)
    rnd.shuffle(shuffled)
    assert screen(shuffled, as_of=AS_OF).to_json() == a


@SETTINGS
@given(patients())
def test_output_is_deterministic(res: list[dict[str, Any]]) -> None:
    assert screen(copy.deepcopy(res), as_of=AS_OF).to_json() == screen(res, as_of=AS_OF).to_json()


CONTRAINDICATIONS = [
    # (code system, code) of a confirmed, active condition with a recent onset that the
    # default policy treats as a contraindication for anyone it applies to.
    ("http://hl7.org/fhir/sid/icd-10-cm", "O09.90"),  # pregnancy (female)
    ("http://snomed.info/sct", "72892002"),  # normal pregnancy (female)
    ("http://snomed.info/sct", "4557003"),  # unstable angina (anyone)
    ("http://hl7.org/fhir/sid/icd-10-cm", "I21.4"),  # NSTEMI, recent MI (anyone)
    ("http://snomed.info/sct", "91302008"),  # sepsis (anyone)
    ("http://hl7.org/fhir/sid/icd-10-cm", "C34.90"),  # lung cancer, active malignancy
]


@SETTINGS
@given(patients(), st.sampled_from(CONTRAINDICATIONS))
def test_adding_a_present_contraindication_never_lowers_the_decision(
    res: list[dict[str, Any]], trig: tuple[str, str]
) -> None:
    res[0]["gender"] = "female"
    res[0]["birthDate"] = "1990-01-01"
    before = screen(res, as_of=AS_OF)
    extra = {"resourceType": "Condition", "id": "added", "subject": {"reference": "Patient/p"},
             "clinicalStatus": {"coding": [{"code": "active"}]},
             "verificationStatus": {"coding": [{"code": "confirmed"}]},
             "code": {"coding": [{"system": trig[0], "code": trig[1]}]},
             "onsetDateTime": (AS_OF - dt.timedelta(days=10)).isoformat()}
    after = screen([*res, extra], as_of=AS_OF)
    assert DECISION_RANK[after.decision] <= DECISION_RANK[before.decision]
    assert after.decision == "contraindicated"
    assert any(e.reference == "Condition/added" for f in after.present for e in f.evidence)


@SETTINGS
@given(patients())
def test_decision_is_the_worst_present_or_unknown_finding(res: list[dict[str, Any]]) -> None:
    a = screen(res, as_of=AS_OF)
    levels = [f.severity for f in a.findings if f.status != "absent"
              and f.severity != "recommendation"]
    expected = min(levels, key=lambda s: DECISION_RANK[s]) if levels else (
        "no-contraindication-found")
    assert a.decision == expected
    assert "eligible" not in a.to_json().decode().lower()
    assert "cleared" not in a.to_json().decode().lower()


@SETTINGS
@given(patients())
def test_records_after_as_of_are_ignored(res: list[dict[str, Any]]) -> None:
    """Anything dated after the as-of date cannot change a finding on that date. (Coverage
    counts what the input holds, whatever its dates: both charts are declared complete.)"""
    base = screen(res, as_of=AS_OF, complete="all")
    future = {"resourceType": "Condition", "id": "future", "subject": {"reference": "Patient/p"},
              "clinicalStatus": {"coding": [{"code": "active"}]},
              "code": {"coding": [{"system": "http://snomed.info/sct", "code": "72892002"}]},
              "onsetDateTime": (AS_OF + dt.timedelta(days=1)).isoformat()}
    after = screen([*res, future], as_of=AS_OF, complete="all")
    assert after.decision == base.decision
    assert [f.status for f in after.findings] == [f.status for f in base.findings]
