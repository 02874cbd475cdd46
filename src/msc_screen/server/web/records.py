"""One patient's engine input from what the clinic holds: uploaded FHIR files, the
questionnaire response and the minimal demographics typed in by staff.

Uploaded files may name the patient with their own Patient id; everything read for a clinic
patient belongs to that patient, so the records are merged under the clinic's id. The
engine decides everything; this only gathers the facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...errors import InputError
from ...fhir.reader import read_bytes
from ...fhir.record import RecordBuilder
from ...model import PatientRecord

_LISTS = ("conditions", "observations", "medications", "procedures", "allergies", "answers",
          "notes", "warnings", "sources")


@dataclass
class Gathered:
    record: PatientRecord
    errors: list[InputError] = field(default_factory=list)


def demographics_resource(fhir_id: str, gender: str | None, birth_date: str | None
                          ) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "id": fhir_id}
    if gender:
        res["gender"] = gender
    if birth_date:
        res["birthDate"] = birth_date
    return res


def check_upload(data: bytes, filename: str) -> tuple[int, list[InputError]]:
    """How many patients an upload holds, and the reader's errors (named by file/line/field)."""
    b = RecordBuilder()
    b.add(read_bytes(data, filename))
    records = b.finish()
    return len(records), list(b.errors)


def gather(fhir_id: str, gender: str | None, birth_date: str | None,
           uploads: Iterable[tuple[str, bytes]], responses: Iterable[dict[str, Any]]
           ) -> Gathered:
    b = RecordBuilder()
    have_patient = False
    for name, data in uploads:
        b.add(read_bytes(data, name))
    qr_bundle = {"resourceType": "Bundle", "type": "collection",
                 "entry": [{"resource": r} for r in responses]}
    if qr_bundle["entry"]:
        b.add(read_bytes(orjson.dumps(qr_bundle), "questionnaire"))
    records = b.finish()
    have_patient = any(r.has_patient_resource for r in records)
    if not have_patient:
        demo = demographics_resource(fhir_id, gender, birth_date)
        b2 = RecordBuilder()
        b2.add(read_bytes(orjson.dumps(demo), "demographics"))
        records = b2.finish() + records
    merged = PatientRecord(id=fhir_id)
    for r in records:
        if r.has_patient_resource and not merged.has_patient_resource:
            merged.has_patient_resource = True
            merged.gender, merged.birth_date = r.gender, r.birth_date
            merged.deceased, merged.deceased_date = r.deceased, r.deceased_date
        for name in _LISTS:
            getattr(merged, name).extend(getattr(r, name))
    return Gathered(merged, list(b.errors))
