"""Small FHIR R4 resources for tests, as plain dicts (what a client would send).

Each builder takes the clinically meaningful fields as arguments and fills in the rest, so a
test reads as the record it describes. ``bundle`` links every resource to one Patient.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from msc_screen.api import load_records
from msc_screen.engine import evaluate
from msc_screen.engine.coverage import complete_kinds, declare_complete
from msc_screen.knowledge import get_ruleset
from msc_screen.model import Assessment, Finding

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"

AS_OF = dt.date(2024, 6, 1)
PATIENT_ID = "p1"
_ids = itertools.count(1)

DateLike = dt.date | str | None


def _d(value: DateLike) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else value


def days_before(n: int, as_of: dt.date = AS_OF) -> dt.date:
    """The date ``n`` days before the as-of date (day N of an N-day window is inside it)."""
    return as_of - dt.timedelta(days=n)


def _cc(code: str | None, system: str, display: str | None, text: str | None
        ) -> dict[str, Any]:
    cc: dict[str, Any] = {}
    if code is not None:
        coding = {"system": system, "code": code}
        if display:
            coding["display"] = display
        cc["coding"] = [coding]
    if text:
        cc["text"] = text
    return cc


def _status(system: str, code: str | None) -> dict[str, Any] | None:
    return None if code is None else {"coding": [{"system": system, "code": code}]}


def _ref() -> dict[str, str]:
    return {"reference": f"Patient/{PATIENT_ID}"}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def patient(gender: str | None = "female", birth_date: DateLike = "1985-03-15",
            pid: str = PATIENT_ID) -> dict[str, Any]:
    return _drop_none({"resourceType": "Patient", "id": pid, "gender": gender,
                       "birthDate": _d(birth_date)})


def condition(code: str | None, system: str = SNOMED, *, onset: DateLike = None,
              abatement: DateLike = None, clinical: str | None = "active",
              verification: str | None = "confirmed", recorded: DateLike = None,
              display: str | None = None, text: str | None = None) -> dict[str, Any]:
    return _drop_none({
        "resourceType": "Condition", "id": f"c{next(_ids)}",
        "clinicalStatus": _status(CLINICAL, clinical),
        "verificationStatus": _status(VERIFICATION, verification),
        "code": _cc(code, system, display, text), "subject": _ref(),
        "onsetDateTime": _d(onset), "abatementDateTime": _d(abatement),
        "recordedDate": _d(recorded),
    })


def observation(code: str, system: str = LOINC, *, effective: DateLike = None,
                value: float | None = None, unit: str | None = None,
                ref_high: float | None = None, value_code: str | None = None,
                value_system: str = SNOMED, value_string: str | None = None,
                interpretation: str | None = None, status: str = "final") -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Observation", "id": f"o{next(_ids)}", "status": status,
        "code": _cc(code, system, None, None), "subject": _ref(),
    }
    if effective is not None:
        res["effectiveDateTime"] = _d(effective)
    if value is not None:
        res["valueQuantity"] = _drop_none({"value": value, "unit": unit})
    if value_code is not None:
        res["valueCodeableConcept"] = {"coding": [{"system": value_system, "code": value_code}]}
    if value_string is not None:
        res["valueString"] = value_string
    if ref_high is not None:
        res["referenceRange"] = [{"high": {"value": ref_high, "unit": unit}}]
    if interpretation is not None:
        res["interpretation"] = [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": interpretation}]}]
    return res


def medication_request(code: str | None, system: str = RXNORM, *, authored: DateLike = None,
                       status: str = "active", text: str | None = None) -> dict[str, Any]:
    return _drop_none({
        "resourceType": "MedicationRequest", "id": f"m{next(_ids)}", "status": status,
        "intent": "order", "medicationCodeableConcept": _cc(code, system, None, text),
        "subject": _ref(), "authoredOn": _d(authored),
    })


def procedure(code: str, system: str = SNOMED, *, performed: DateLike = None,
              status: str = "completed") -> dict[str, Any]:
    return _drop_none({
        "resourceType": "Procedure", "id": f"pr{next(_ids)}", "status": status,
        "code": _cc(code, system, None, None), "subject": _ref(),
        "performedDateTime": _d(performed),
    })


def allergy(code: str | None = None, system: str = SNOMED, *, text: str | None = None,
            clinical: str | None = "active", verification: str | None = "confirmed",
            recorded: DateLike = None) -> dict[str, Any]:
    return _drop_none({
        "resourceType": "AllergyIntolerance", "id": f"a{next(_ids)}",
        "clinicalStatus": _status(ALLERGY_CLINICAL, clinical),
        "verificationStatus": _status(ALLERGY_VERIFICATION, verification),
        "code": _cc(code, system, None, text), "patient": _ref(),
        "recordedDate": _d(recorded),
    })


def _answer(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, dt.date):
        return {"valueDate": value.isoformat()}
    if isinstance(value, int):
        return {"valueInteger": value}
    return {"valueCoding": {"code": str(value)}}


def questionnaire_response(answers: dict[str, Any], authored: DateLike = None
                           ) -> dict[str, Any]:
    """Answers by link_id: a str becomes a choice (valueCoding), a date a valueDate."""
    return _drop_none({
        "resourceType": "QuestionnaireResponse", "id": f"q{next(_ids)}", "status": "completed",
        "subject": _ref(), "authored": _d(authored or AS_OF),
        "item": [{"linkId": k, "answer": [_answer(v)]} for k, v in answers.items()],
    })


def bundle(*resources: dict[str, Any], pat: dict[str, Any] | None = None) -> dict[str, Any]:
    """A collection Bundle: the Patient (default: a woman born 1985) plus ``resources``."""
    pat = pat if pat is not None else patient()
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in (pat, *resources)]}


def screen(*resources: dict[str, Any], pat: dict[str, Any] | None = None,
           as_of: dt.date = AS_OF, policy: str | None = None,
           complete: str | None = "all") -> Assessment:
    """Screen the bundle of ``resources`` with the engine the public API uses, without a notes
    extractor (these resources carry no notes), so rule tests depend on the rules alone. The
    bundle is the patient's whole chart (``complete="all"``: what it does not hold, the patient
    does not have) unless ``complete=None``: then only the kinds it holds are provided."""
    rs = get_ruleset(policy)
    records, errors = load_records(bundle(*resources, pat=pat))
    assert not errors, errors
    assert len(records) == 1
    declare_complete(records, complete_kinds(rs, complete))
    return evaluate(records[0], rs, as_of, None)


def finding(a: Assessment, rule: str) -> Finding:
    for f in a.findings:
        if f.rule == rule:
            return f
    raise AssertionError(f"no finding for rule {rule!r}")


def outcome(a: Assessment, rule: str) -> tuple[str, str]:
    """(status, severity) of one rule's finding."""
    f = finding(a, rule)
    return f.status, f.severity
