"""A small hand-built input for the terminology audit: three patients' Bundles (one a
transaction with ``urn:uuid:`` references) whose records carry a code in a value set, codes in
none (conditions, an observation, a drug behind a ``medicationReference``, a local code), one
the safety net fires on, one to be reviewed, and one with no name; and a file that is not JSON.
What each code must come out as is in ``EXPECTED``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson

from msc_screen.knowledge import get_ruleset
from msc_screen.knowledge.loader import package_root
from msc_screen.terminology.systems import system_key

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
LOCAL = "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268"  # an Epic-style local code system

MI = "22298006"  # myocardial infarction: in a value set, never listed
HYPERTENSION = "38341003"  # in no value set: 3 patients, 4 records
BODY_HEIGHT = "8302-2"  # an observation in no value set: 2 patients, 4 records
NET = "999990000000101"  # in no value set; its display names a malignant neoplasm
REVIEWED = "999990000000202"  # ditto, until the knowledge base lists it as reviewed
UNNAMED = "0000-0000-00"  # an NDC code with no display and no text
AMLODIPINE = "197361"  # RxNorm, behind a medicationReference: in no value set
LOCAL_CODE = "HTN-9"

IN_NO_VALUE_SET = [(SNOMED, HYPERTENSION), (LOINC, BODY_HEIGHT), (SNOMED, NET),
                   (SNOMED, REVIEWED), (NDC, UNNAMED), (RXNORM, AMLODIPINE)]

# code -> (system URI, patients, records, kinds, main verdict), with the packaged knowledge base
EXPECTED: dict[str, tuple[str, int, int, list[str], str]] = {
    HYPERTENSION: (SNOMED, 3, 4, ["condition"], "unmatched"),
    BODY_HEIGHT: (LOINC, 2, 4, ["observation"], "unmatched"),
    NET: (SNOMED, 1, 1, ["condition"], "safety-net"),  # for active-malignancy (and history)
    REVIEWED: (SNOMED, 1, 1, ["condition"], "safety-net"),
    UNNAMED: (NDC, 1, 1, ["medication"], "unnamed"),
    AMLODIPINE: (RXNORM, 1, 1, ["medication"], "unmatched"),
    LOCAL_CODE: (LOCAL, 1, 1, ["condition"], "unmatched"),
}
# most patients first, then system (its short key: ndc, rxnorm, snomed, then local URIs), code
ORDER = [HYPERTENSION, BODY_HEIGHT, UNNAMED, AMLODIPINE, NET, REVIEWED, LOCAL_CODE]


def check_assumptions() -> None:
    """The codes chosen as "in no value set" must be in none the rules read (a knowledge-base
    change that adds one must make the test say so, not fail obscurely)."""
    rs = get_ruleset()
    for system, code in IN_NO_VALUE_SET:
        key = system_key(system)
        for f in rs.record_filters.values():
            assert not f.wants(key, code), f"{system} {code} is now in a value set: pick another"
    assert rs.record_filters["condition"].wants("snomed", MI)


def _cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _condition(rid: str, subject: str, cc: dict[str, Any], onset: str = "2025-06-01"
               ) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": rid, "subject": {"reference": subject},
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "code": cc, "onsetDateTime": onset}


def _height(rid: str, subject: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "subject": {"reference": subject}, "code": _cc(LOINC, BODY_HEIGHT, "Body Height"),
            "effectiveDateTime": "2025-06-01",
            "valueQuantity": {"value": 170, "unit": "cm"}}


def _patient(pid: str, gender: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": "1970-05-01"}


def _collection(*resources: dict[str, Any]) -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": "collection",
                         "entry": [{"resource": r} for r in resources]})


def write_inputs(root: Path, bad: bool = True) -> Path:
    """The Bundles (and, with ``bad``, a file that is not JSON) in ``root/in``."""
    d = root / "in"
    d.mkdir(parents=True)
    a = "Patient/pa"
    (d / "a.json").write_bytes(_collection(
        _patient("pa", "female"),
        _condition("a1", a, _cc(SNOMED, MI, "Myocardial infarction")),
        _condition("a2", a, _cc(SNOMED, HYPERTENSION, "Hypertension"), "2010-01-01"),
        _condition("a3", a, _cc(SNOMED, HYPERTENSION, "Hypertension"), "2012-01-01"),
        _condition("a4", a, _cc(SNOMED, NET, "Primary malignant neoplasm of colon (disorder)")),
        _height("a5", a), _height("a6", a), _height("a7", a)))
    b = "Patient/pb"
    (d / "b.json").write_bytes(_collection(
        _patient("pb", "male"),
        _condition("b1", b, _cc(SNOMED, HYPERTENSION, "Hypertension")),
        _condition("b2", b, _cc(LOCAL, LOCAL_CODE, "Essential hypertension")),
        _condition("b3", b, _cc(SNOMED, REVIEWED, "Malignant tumor lysis screening panel")),
        _height("b4", b),
        {"resourceType": "MedicationRequest", "id": "b5", "status": "active",
         "intent": "order", "subject": {"reference": b}, "authoredOn": "2025-11-01",
         "medicationCodeableConcept": _cc(NDC, UNNAMED)}))
    pc, med = "urn:uuid:0b7c7a3e-3f7e-4c1e-9b59-6a1c2f0e9d11", "urn:uuid:5d2b-med"
    (d / "c.json").write_bytes(orjson.dumps({"resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": pc, "resource": _patient("pc", "female"),
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": med, "resource": {"resourceType": "Medication",
                                          "code": _cc(RXNORM, AMLODIPINE,
                                                      "amlodipine 5 MG Oral Tablet")},
             "request": {"method": "POST", "url": "Medication"}},
            {"resource": _condition("c1", pc, _cc(SNOMED, HYPERTENSION, "Hypertension")),
             "request": {"method": "POST", "url": "Condition"}},
            {"resource": {"resourceType": "MedicationRequest", "id": "c2", "status": "active",
                          "intent": "order", "subject": {"reference": pc},
                          "authoredOn": "2025-11-01",
                          "medicationReference": {"reference": med}},
             "request": {"method": "POST", "url": "MedicationRequest"}},
        ]}))
    if bad:
        (d / "zz-bad.json").write_bytes(b'{"resourceType": "Bundle", "entry": [')
    return d


def reviewed_root(root: Path) -> Path:
    """A copy of the packaged knowledge base whose reviewed-codes list holds ``REVIEWED``."""
    kb = root / "kb"
    shutil.copytree(package_root(), kb)
    (kb / "terminology" / "reviewed-codes.yaml").write_text(
        "codes:\n"
        f"  - {{system: snomed, code: '{REVIEWED}', display: 'Tumor lysis screening panel',\n"
        "     reason: 'a laboratory order set, not a diagnosis', reviewed: '2026-12-02'}\n",
        encoding="utf-8")
    return kb
