"""The reader accepts every shape a clinic's data arrives in, and keys patients by id across
files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson

from msc_screen.api import load_records
from msc_screen.fhir.reader import read_bytes, read_paths
from msc_screen.fhir.record import build_records

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1990-05-01"}


def cond(cid: str, code: str, pid: str = "p1", **kw: object) -> dict[str, object]:
    r: dict[str, object] = {
        "resourceType": "Condition", "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
        "onsetDateTime": "2019-01-01",
    }
    r.update(kw)
    return r


def bundle(kind: str, resources: list[dict[str, object]], urn: bool = False) -> dict[str, object]:
    entries = []
    for r in resources:
        e: dict[str, object] = {"resource": r}
        if urn:
            e["fullUrl"] = f"urn:uuid:{r['id']}"
            e["request"] = {"method": "POST", "url": r["resourceType"]}
        entries.append(e)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def test_collection_searchset_and_transaction_bundles_are_read() -> None:
    for kind in ("collection", "searchset", "batch", "document"):
        recs, errs = load_records(bundle(kind, [PATIENT, cond("c1", "72892002")]))
        assert not errs
        assert [r.id for r in recs] == ["p1"]
        assert recs[0].conditions[0].reference == "Condition/c1"


def test_transaction_with_urn_uuid_references_resolves_patient() -> None:
    pat = dict(PATIENT, id="abc-123")
    c = cond("c1", "72892002")
    c["subject"] = {"reference": "urn:uuid:abc-123"}
    recs, errs = load_records(bundle("transaction", [pat, c], urn=True))
    assert not errs and len(recs) == 1
    assert recs[0].id == "abc-123" and len(recs[0].conditions) == 1
    assert recs[0].has_patient_resource


def test_single_resource_and_list_of_resources() -> None:
    recs, errs = load_records(PATIENT)
    assert not errs and recs[0].gender == "female"
    recs, errs = load_records([PATIENT, cond("c1", "72892002")])
    assert not errs and len(recs[0].conditions) == 1


def test_ndjson_bulk_export_groups_patients_across_files(tmp_path: Path) -> None:
    pats = [dict(PATIENT, id=f"p{i}") for i in range(3)]
    (tmp_path / "Patient.ndjson").write_bytes(b"\n".join(orjson.dumps(p) for p in pats) + b"\n")
    conds = [cond(f"c{i}", "72892002", pid=f"p{i % 3}") for i in range(7)]
    with gzip.open(tmp_path / "Condition.ndjson.gz", "wb") as fh:
        fh.write(b"\n".join(orjson.dumps(c) for c in conds))
    recs, errs = build_records(read_paths([tmp_path]))
    assert not errs
    assert [r.id for r in recs] == ["p0", "p1", "p2"]
    assert [len(r.conditions) for r in recs] == [3, 2, 2]
    assert all(r.has_patient_resource for r in recs)


def test_gzip_bundle_and_directory(tmp_path: Path) -> None:
    d = tmp_path / "nested" / "deeper"
    d.mkdir(parents=True)
    with gzip.open(d / "a.json.gz", "wb") as fh:
        fh.write(json.dumps(bundle("collection", [PATIENT])).encode())
    recs, errs = build_records(read_paths([tmp_path]))
    assert not errs and [r.id for r in recs] == ["p1"]


def test_unknown_fields_and_extensions_are_tolerated() -> None:
    p = dict(PATIENT, extension=[{"url": "http://x", "valueString": "y"}], _birthDate={"id": "q"},
             unknownThing={"deep": [1, 2, {"x": None}]})
    recs, errs = load_records(p)
    assert not errs and recs[0].birth_date is not None


def test_onset_forms_datetime_period_age_string() -> None:
    resources = [
        PATIENT,
        cond("a", "1", onsetDateTime="2019-02-03T10:00:00+02:00"),
        cond("b", "2", onsetDateTime=None, onsetPeriod={"start": "2019-03"}),
        cond("c", "3", onsetDateTime=None, onsetAge={"value": 20, "unit": "a"}),
        cond("d", "4", onsetDateTime=None, onsetString="in childhood"),
    ]
    for r in resources[1:]:
        if r.get("onsetDateTime") is None:
            r.pop("onsetDateTime")
    recs, errs = load_records(resources)
    assert not errs
    by = {c.reference: c for c in recs[0].conditions}
    assert by["Condition/a"].onset is not None and by["Condition/a"].onset.text == "2019-02-03"
    on_b = by["Condition/b"].onset
    assert on_b is not None and (on_b.lo.isoformat(), on_b.hi.isoformat()) == (
        "2019-03-01", "2019-03-31")
    on_c = by["Condition/c"].onset
    assert on_c is not None and on_c.lo.isoformat() == "2010-05-01"
    assert by["Condition/d"].onset is None
    assert any("onset recorded only as text" in w for w in recs[0].warnings)


def test_medication_reference_resolves_to_medication_resource() -> None:
    med = {"resourceType": "Medication", "id": "m1", "code": {"coding": [{
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1736854"}]}}
    mr = {"resourceType": "MedicationRequest", "id": "r1", "status": "active",
          "intent": "order", "subject": {"reference": "Patient/p1"},
          "medicationReference": {"reference": "Medication/m1"}, "authoredOn": "2019-01-01"}
    recs, errs = load_records([PATIENT, med, mr])
    assert not errs
    assert recs[0].medications[0].codings[0].code == "1736854"
    assert recs[0].medications[0].codings[0].system == "rxnorm"


def test_document_reference_text_is_read_as_a_note() -> None:
    import base64

    doc = {"resourceType": "DocumentReference", "id": "d1", "status": "current",
           "subject": {"reference": "Patient/p1"},
           "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                       "data": base64.b64encode(b"Patient is pregnant.").decode()}},
                       {"attachment": {"contentType": "application/pdf", "data": "JVBERi0="}}]}
    recs, errs = load_records([PATIENT, doc])
    assert not errs
    assert recs[0].notes[0].text == "Patient is pregnant."
    assert any("application/pdf" in w for w in recs[0].warnings)


def test_read_bytes_detects_ndjson_without_extension() -> None:
    data = orjson.dumps(PATIENT) + b"\n" + orjson.dumps(cond("c1", "1")) + b"\n"
    r = read_bytes(data, "export")
    assert r.error is None and len(r.resources) == 2


def test_ndjson_file_of_types_the_rules_do_not_read_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_bytes(orjson.dumps(PATIENT) + b"\n")
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished",
           "subject": {"reference": "Patient/p1"}}
    (tmp_path / "Encounter.ndjson").write_bytes(orjson.dumps(enc) + b"\n")
    recs, errs = build_records(read_paths([tmp_path]))
    assert not errs and [r.id for r in recs] == ["p1"]
