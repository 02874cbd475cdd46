"""Small uploadable FHIR files for the web tests: a Bundle about one person, with or without
a Patient resource, and the HTTP steps of an upload."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from .helpers import Browser, csrf

SNOMED = "http://snomed.info/sct"
# active non-small cell lung cancer: active-malignancy is present (contraindicated)
CANCER = "254637007"


def person(given: str = "Ann", family: str = "Test", birth: str | None = "1990-01-01",
           gender: str | None = "female", *, deceased: str | bool | None = None,
           identifiers: tuple[tuple[str, str], ...] = (), pid: str = "file-patient"
           ) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "id": pid,
                           "name": [{"use": "official", "family": family, "given": [given]}]}
    if birth:
        res["birthDate"] = birth
    if gender:
        res["gender"] = gender
    if isinstance(deceased, str):
        res["deceasedDateTime"] = deceased
    elif deceased:
        res["deceasedBoolean"] = True
    if identifiers:
        res["identifier"] = [{"system": s, "value": v} for s, v in identifiers]
    return res


def cancer(pid: str = "file-patient", cid: str = "cond-1") -> dict[str, Any]:
    return {"resourceType": "Condition", "id": cid,
            "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": SNOMED, "code": CANCER,
                                 "display": "Non-small cell lung cancer"}]},
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed"}]},
            "onsetDateTime": "2026-06-01"}


def bundle(*resources: dict[str, Any]) -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": "collection",
                         "entry": [{"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}",
                                    "resource": r} for r in resources]})


def upload(b: Browser, pid: int, data: bytes, name: str = "record.json", *,
           complete: bool = False, token: bool = True) -> httpx.Response:
    page = b.get(f"/clinic/patients/{pid}").text
    form: dict[str, str] = {"csrf_token": csrf(page)} if token else {}
    if complete:
        form["complete"] = "yes"
    return b.c.post(f"/clinic/patients/{pid}/upload", data=form,
                    files={"file": (name, data, "application/fhir+json")},
                    follow_redirects=False)
