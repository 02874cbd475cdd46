"""Uploads through the HTTP pages: another person's file (or one naming nobody) is not read
until staff confirm it with a reason, or is cancelled; every upload is listed and can be
withdrawn; the same file twice is one upload; the complete-record mark declares the kinds of
data complete. Every change is in the audit log."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from msc_screen.server.web.clinic import Clinic
from msc_screen.store.audit import verify
from msc_screen.store.clinic_models import AuditEntry, StoredAssessment, UploadedRecord, User

from .helpers import Browser, csrf, text
from .records import CANCER, bundle, cancer, person, upload

Web = tuple[TestClient, Browser]


def _latest(c: TestClient, pid: int) -> StoredAssessment | None:
    with c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        return s.scalar(select(StoredAssessment).where(StoredAssessment.patient_id == pid)
                        .order_by(StoredAssessment.id.desc()).limit(1))


def _count(c: TestClient, pid: int) -> int:
    with c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        return int(s.scalar(select(func.count()).select_from(StoredAssessment)
                            .where(StoredAssessment.patient_id == pid)) or 0)


def _uploads(c: TestClient, pid: int) -> list[UploadedRecord]:
    with c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        return list(s.scalars(select(UploadedRecord).where(UploadedRecord.patient_id == pid)
                              .order_by(UploadedRecord.id)))


def _audit(c: TestClient, action: str) -> list[AuditEntry]:
    with c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        assert verify(s).ok
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.seq)))


def _reads_cancer(a: StoredAssessment | None) -> bool:
    assert a is not None
    doc: dict[str, Any] = a.document
    return any((e.get("code") or {}).get("code") == CANCER
               for f in doc["findings"] for e in f.get("evidence", []))


def _uid(location: str) -> int:
    m = re.search(r"/uploads/(\d+)$", location)
    assert m, location
    return int(m.group(1))


def _other_person_upload(c: TestClient, b: Browser) -> tuple[int, int]:
    """Ann Test (female, 1990-01-01) gets Bob Other's file (male, 1950-05-05) with a cancer."""
    b.login("staff1")
    pid = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    data = bundle(person("Bob", "Other", "1950-05-05", "male"), cancer())
    r = upload(b, pid, data, "bob.json")
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"/clinic/patients/{pid}/uploads/")
    return pid, _uid(r.headers["location"])


def test_another_persons_bundle_is_not_read_until_confirmed_with_a_reason(web: Web) -> None:
    c, b = web
    pid, uid = _other_person_upload(c, b)
    assert _count(c, pid) == 0  # not screened: nothing was read
    page = b.get(f"/clinic/patients/{pid}/uploads/{uid}")
    words = text(page.text)
    assert "Check whose records this file holds" in words and "This file has not been read" in words
    assert "Bob Other" in words and "1950-05-05" in words
    for label in ("Name", "Birth date", "Sex"):
        assert f"{label} : this patient" in words or f"{label}: this patient" in words, label
    [u] = _uploads(c, pid)
    assert u.status == "pending"
    # a re-screen meanwhile does not read it
    b.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/rescreen", {})
    assert not _reads_cancer(_latest(c, pid))
    # the patient page lists it as not read, with who is in it
    listed = text(b.get(f"/clinic/patients/{pid}").text)
    assert "bob.json" in listed and "Awaiting confirmation: not read" in listed
    assert "Bob Other" in listed and "Differs from this patient: Name, Birth date, Sex" in listed

    r = b.submit(f"/clinic/patients/{pid}/uploads/{uid}",
                 f"/clinic/patients/{pid}/uploads/{uid}/confirm", {"reason": "  "})
    assert r.status_code == 400 and "Give a reason" in r.text
    assert _uploads(c, pid)[0].status == "pending"

    reason = "Records sent under the wrong name by the referring GP; checked by phone"
    r = b.submit(f"/clinic/patients/{pid}/uploads/{uid}",
                 f"/clinic/patients/{pid}/uploads/{uid}/confirm", {"reason": reason},
                 follow_redirects=False)
    assert r.status_code == 303
    latest = _latest(c, pid)
    assert latest is not None and latest.trigger == "upload-confirmed"
    assert latest.decision == "contraindicated" and _reads_cancer(latest)
    [u] = _uploads(c, pid)
    assert u.status == "active" and u.confirm_reason == reason and u.confirmed_at is not None
    [entry] = _audit(c, "record.confirm")
    assert entry.actor == "staff1" and entry.target == f"Patient/{pid}"
    assert entry.details["upload"] == uid
    assert entry.details["reason_sha256"] == hashlib.sha256(reason.encode()).hexdigest()
    assert set(entry.details["differs"]) == {"name", "birth-date", "sex"}
    assert reason not in orjson.dumps(entry.details).decode()  # free text stays out of the log
    detail = text(b.get(f"/clinic/patients/{pid}/uploads/{uid}").text)
    assert "Confirmed as this patient's records by staff1" in detail and reason in detail


def test_another_persons_bundle_cancelled_is_never_read(web: Web) -> None:
    c, b = web
    pid, uid = _other_person_upload(c, b)
    r = b.submit(f"/clinic/patients/{pid}/uploads/{uid}",
                 f"/clinic/patients/{pid}/uploads/{uid}/cancel", {}, follow_redirects=False)
    assert r.status_code == 303
    page = text(b.get(r.headers["location"]).text)
    assert "was cancelled: it was never read" in page and "Cancelled: never read" in page
    [u] = _uploads(c, pid)
    assert u.status == "cancelled" and u.data == b"" and u.size > 0 and len(u.sha256) == 64
    [entry] = _audit(c, "record.cancel")
    assert entry.details["upload"] == uid and entry.details["sha256"] == u.sha256
    assert _count(c, pid) == 0
    b.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/rescreen", {})
    assert not _reads_cancer(_latest(c, pid))
    # nothing left to confirm
    r = b.submit(f"/clinic/patients/{pid}/uploads/{uid}",
                 f"/clinic/patients/{pid}/uploads/{uid}/confirm", {"reason": "oops"})
    assert r.status_code == 400 and "not awaiting confirmation" in r.text


def test_upload_without_a_patient_resource_asks_for_confirmation(web: Web) -> None:
    c, b = web
    b.login("staff1")
    pid = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    ndjson = orjson.dumps(cancer(pid="someone")) + b"\n"
    r = upload(b, pid, ndjson, "Condition.ndjson")
    assert r.status_code == 303 and "/uploads/" in r.headers["location"]
    page = text(b.get(r.headers["location"]).text)
    assert "holds no Patient resource" in page and "no Patient resource" in page
    assert _count(c, pid) == 0 and _uploads(c, pid)[0].status == "pending"
    listed = text(b.get(f"/clinic/patients/{pid}").text)
    assert "No Patient resource" in listed


def test_deceased_or_other_identifier_needs_confirmation_matching_is_read(web: Web) -> None:
    c, b = web
    b.login("staff1")
    r = b.submit("/clinic", "/clinic/patients",
                 {"name": "Ann Test", "gender": "female", "birth_date": "1990-01-01",
                  "identifier": "urn:mrn|123"}, follow_redirects=False)
    pid = int(r.headers["location"].rsplit("/", 1)[1])
    # the same name and birth date but recorded as deceased
    r = upload(b, pid, bundle(person(deceased="2020-02-02")), "dead.json")
    assert "/uploads/" in r.headers["location"]
    assert "recorded as deceased on 2020-02-02" in text(b.get(r.headers["location"]).text)
    # the same person by name but another number in the clinic's identifier system
    r = upload(b, pid, bundle(person(identifiers=(("urn:mrn", "999"),), pid="p2")), "mrn.json")
    assert "/uploads/" in r.headers["location"]
    assert "urn:mrn 999" in text(b.get(r.headers["location"]).text)
    assert _count(c, pid) == 0
    # the patient's own file (a middle name the clinic left out, the right number) is read
    own = person(identifiers=(("urn:mrn", "123"),), pid="p3")
    own["name"][0]["given"] = ["Ann", "Marie"]
    r = upload(b, pid, bundle(own, cancer(pid="p3")), "own.json")
    assert r.status_code == 303 and "notice=uploaded" in r.headers["location"]
    assert _reads_cancer(_latest(c, pid))
    assert "was read and the patient was screened again" in text(
        b.get(r.headers["location"]).text)
    assert [u.status for u in _uploads(c, pid)] == ["pending", "pending", "active"]


def test_withdraw_an_upload_next_screening_without_it(web: Web) -> None:
    c, b = web
    b.login("staff1")
    pid = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    data = bundle(person(), cancer())
    r = upload(b, pid, data, "ann.json")
    assert "notice=uploaded" in r.headers["location"]
    first = _latest(c, pid)
    assert first is not None and first.decision == "contraindicated" and _reads_cancer(first)
    [u] = _uploads(c, pid)
    detail = b.get(f"/clinic/patients/{pid}/uploads/{u.id}").text
    assert "Withdraw the file" in detail
    r = b.submit(f"/clinic/patients/{pid}/uploads/{u.id}",
                 f"/clinic/patients/{pid}/uploads/{u.id}/withdraw", {"reason": ""})
    assert r.status_code == 400 and "Give a reason" in r.text
    assert _latest(c, pid).id == first.id  # type: ignore[union-attr]
    r = b.submit(f"/clinic/patients/{pid}/uploads/{u.id}",
                 f"/clinic/patients/{pid}/uploads/{u.id}/withdraw",
                 {"reason": "Filed to the wrong chart"}, follow_redirects=False)
    assert r.status_code == 303
    after = _latest(c, pid)
    assert after is not None and after.id != first.id and after.trigger == "withdraw"
    assert not _reads_cancer(after) and after.decision != "contraindicated"
    [u] = _uploads(c, pid)
    assert u.status == "withdrawn" and u.data == data  # kept for the earlier screening
    assert u.ended_reason == "Filed to the wrong chart"
    [entry] = _audit(c, "record.withdraw")
    assert entry.details["upload"] == u.id and entry.details["sha256"] == u.sha256
    [screen] = [e for e in _audit(c, "assessment.create") if e.details["trigger"] == "withdraw"]
    assert screen.details["uploads"] == []
    page = text(b.get(r.headers["location"]).text)
    assert "was withdrawn" in page and "Withdrawn: no longer read" in page
    # a later re-screen does not read it either
    b.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/rescreen", {})
    assert not _reads_cancer(_latest(c, pid))
    # the earlier screening's report still shows what it read
    old = b.get(f"/clinic/patients/{pid}/report?assessment={first.id}").text
    assert CANCER in old


def test_the_same_file_twice_is_one_upload(web: Web) -> None:
    c, b = web
    b.login("staff1")
    pid = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    data = bundle(person(), cancer())
    assert "notice=uploaded" in upload(b, pid, data, "ann.json").headers["location"]
    screenings = _count(c, pid)
    r = upload(b, pid, data, "ann-again.json")
    assert r.status_code == 303 and "notice=duplicate" in r.headers["location"]
    page = text(b.get(r.headers["location"]).text)
    assert "“ann.json” is already uploaded for this patient" in page
    assert "an identical file is kept once, and nothing changed" in page
    assert len(_uploads(c, pid)) == 1 and _count(c, pid) == screenings
    [dup] = _audit(c, "record.upload-duplicate")
    assert dup.details["upload"] == _uploads(c, pid)[0].id
    # a file awaiting confirmation is one upload too
    other = bundle(person("Bob", "Other", "1950-05-05", "male"))
    first = upload(b, pid, other, "bob.json").headers["location"]
    again = upload(b, pid, other, "bob.json").headers["location"]
    assert "/uploads/" in first and "notice=duplicate" in again
    assert len(_uploads(c, pid)) == 2
    # once withdrawn, the same file may be uploaded again as a new upload
    u = _uploads(c, pid)[0]
    b.submit(f"/clinic/patients/{pid}/uploads/{u.id}",
             f"/clinic/patients/{pid}/uploads/{u.id}/withdraw", {"reason": "test"})
    r = upload(b, pid, data, "ann.json")
    assert "notice=uploaded" in r.headers["location"]
    assert [x.status for x in _uploads(c, pid)] == ["withdrawn", "pending", "active"]
    assert _reads_cancer(_latest(c, pid))


def test_complete_record_checkbox_declares_the_kinds_complete(web: Web) -> None:
    c, b = web
    b.login("staff1")
    plain = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    marked = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    data = bundle(person(), cancer())
    upload(b, plain, data, "ann.json")
    r = upload(b, marked, data, "ann.json", complete=True)
    assert "notice=uploaded" in r.headers["location"]
    cov_plain = _latest(c, plain).document["coverage"]  # type: ignore[union-attr]
    cov_marked = _latest(c, marked).document["coverage"]  # type: ignore[union-attr]
    assert cov_plain["conditions"]["status"] == cov_marked["conditions"]["status"] == "provided"
    for kind in ("medications", "procedures", "allergies", "laboratory", "documents"):
        assert cov_plain[kind]["status"] == "not-provided", kind
        assert cov_marked[kind]["status"] == "provided", kind
        assert "complete record" in cov_marked[kind]["reason"], kind
    # the patient's own questionnaire is never part of an export
    assert cov_marked["questionnaire"]["status"] == "not-provided"
    [u] = _uploads(c, marked)
    assert u.complete
    [entry] = [e for e in _audit(c, "record.upload") if e.details["upload"] == u.id]
    assert entry.details["complete"] is True
    page = text(b.get(f"/clinic/patients/{marked}").text)
    assert "Complete record" in page and "declared complete" in page
    # unmarking it (audited) screens again without the declaration
    r = b.submit(f"/clinic/patients/{marked}/uploads/{u.id}",
                 f"/clinic/patients/{marked}/uploads/{u.id}/complete", {"complete": "no"},
                 follow_redirects=False)
    assert r.status_code == 303 and "notice=complete-off" in r.headers["location"]
    latest = _latest(c, marked)
    assert latest is not None and latest.trigger == "complete-record"
    assert latest.document["coverage"]["medications"]["status"] == "not-provided"
    [toggle] = _audit(c, "record.complete")
    assert toggle.details == {"upload": u.id, "complete": False}


def test_new_forms_need_the_csrf_token(web: Web) -> None:
    c, b = web
    pid, uid = _other_person_upload(c, b)
    r = upload(b, pid, bundle(person()), "x.json", token=False)
    assert r.status_code == 403 and "Form expired" in r.text
    for action, form in (("confirm", {"reason": "r"}), ("cancel", {}),
                         ("withdraw", {"reason": "r"}), ("complete", {"complete": "yes"})):
        r = b.c.post(f"/clinic/patients/{pid}/uploads/{uid}/{action}", data=form)
        assert r.status_code == 403 and "Form expired" in r.text, action
        r = b.c.post(f"/clinic/patients/{pid}/uploads/{uid}/{action}",
                     data={**form, "csrf_token": "forged"})
        assert r.status_code == 403, action
    [u] = _uploads(c, pid)
    assert u.status == "pending" and not u.complete
    assert len(_uploads(c, pid)) == 1


def test_upload_pages_need_sign_in_and_stay_with_their_patient(web: Web) -> None:
    c, b = web
    pid, uid = _other_person_upload(c, b)
    other = b.new_patient("Cat Third", gender="female", birth="1980-01-01")
    r = b.get(f"/clinic/patients/{other}/uploads/{uid}")
    assert r.status_code == 404
    page = b.get(f"/clinic/patients/{pid}/uploads/{uid}").text
    r = b.c.post(f"/clinic/patients/{other}/uploads/{uid}/confirm",
                 data={"reason": "wrong patient", "csrf_token": csrf(page)})
    assert r.status_code == 404 and "No such upload for this patient" in r.text
    assert _uploads(c, pid)[0].status == "pending"
    anon = Browser(TestClient(c.app, base_url="http://127.0.0.1"))
    r = anon.get(f"/clinic/patients/{pid}/uploads/{uid}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_the_same_file_stored_by_a_concurrent_request_is_one_upload(
        web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two requests uploading one file at once: the second's look-up ran before the first
    committed, so the unique index on live uploads refuses its insert; it then answers
    'duplicate' instead of failing."""
    c, b = web
    b.login("staff1")
    pid = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    data = bundle(person(), cancer())
    assert "notice=uploaded" in upload(b, pid, data, "ann.json").headers["location"]
    clinic = c.app.state.clinic  # type: ignore[attr-defined]
    real = Clinic._same_upload
    calls: list[int] = []

    def late(self: Clinic, s: Any, patient_id: int, digest: str) -> Any:
        calls.append(patient_id)
        return None if len(calls) == 1 else real(self, s, patient_id, digest)

    monkeypatch.setattr(Clinic, "_same_upload", late)
    with clinic.read() as s:
        staff = s.scalar(select(User).where(User.username == "staff1"))
    got = clinic.add_upload(staff, pid, "ann.json", data)
    assert got.status == "duplicate" and len(calls) == 2
    assert len(_uploads(c, pid)) == 1
