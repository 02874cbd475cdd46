"""Data coverage on the clinic pages: what a screening had (per kind, per question), a record
with no clinical data never shown in green, blank answers "not answered" (never "absent") on
the staff pages and the patient's result page; and what ``gather`` merges."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import select

from msc_screen.engine import evaluate
from msc_screen.knowledge import get_ruleset
from msc_screen.model import KindCoverage
from msc_screen.questionnaire import build_form
from msc_screen.server.web.records import Source, gather, merge_declared
from msc_screen.store.clinic_models import StoredAssessment

from .conftest import new_browser
from .helpers import Browser, answer_all, baseline_answers, csrf, text
from .records import bundle, cancer, person, upload

Web = tuple[TestClient, Browser]
GREEN = "d-no-contraindication-found"


def _latest(c: TestClient, pid: int) -> StoredAssessment:
    with c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        a = s.scalar(select(StoredAssessment).where(StoredAssessment.patient_id == pid)
                     .order_by(StoredAssessment.id.desc()).limit(1))
    assert a is not None
    return a


def _finding_titles(html: str) -> list[str]:
    found = html.split('id="findings-h"', 1)[1] if 'id="findings-h"' in html else html
    return [text(t).strip() for t in re.findall(
        r'<article class="finding[^"]*"[^>]*>\s*<h3>(.*?)<span', found, re.S)]


def _card(html: str, rule: str) -> tuple[str, str]:
    """A finding's card on a page: its status class and its text."""
    m = re.search(rf'<article class="finding s-(\w+)" id="f-{rule}">(.*?)</article>', html, re.S)
    assert m, f"no finding card for {rule}"
    return m.group(1), text(m.group(2))


def _status(doc: dict[str, Any], rule: str) -> str:
    return str(next(f["status"] for f in doc["findings"] if f["rule"] == rule))


def test_patient_only_record_is_needs_information_not_green(web: Web) -> None:
    c, b = web
    b.login("staff1")
    pid = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    b.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/rescreen", {})
    a = _latest(c, pid)
    assert a.decision == "needs-information"
    page = b.get(f"/clinic/patients/{pid}").text
    words = text(page)
    assert "More information needed" in words and GREEN not in page
    assert "No clinical data." in words and "Data this screening had" in words
    assert re.search(r"Conditions \(problem list, diagnoses\)\s+Not provided", words)
    assert _finding_titles(page)[0] == "Data available for screening"
    assert "not enough data" in words and "Not enough data to decide." in words
    # a file holding only this patient's Patient resource is no clinical data either
    r = upload(b, pid, bundle(person()), "patient-only.json")
    assert "notice=uploaded" in r.headers["location"]
    a = _latest(c, pid)
    assert a.decision == "needs-information" and a.trigger == "upload"
    report = b.get(f"/clinic/patients/{pid}/report?assessment={a.id}").text
    assert GREEN not in report and "No clinical data." in text(report)
    assert _finding_titles(report)[0] == "Data available for screening"
    queue = b.get("/clinic").text
    row = next(r for r in queue.split("<tr>") if "Ann Test" in r)
    assert "More information needed" in text(row) and GREEN not in row


def test_complete_record_with_nothing_found_is_green(web: Web) -> None:
    """The other side: a record declared complete with nothing in it is shown as such."""
    c, b = web
    b.login("staff1")
    pid = b.new_patient("Bob Other", gender="male", birth="1950-05-05")
    upload(b, pid, bundle(person("Bob", "Other", "1950-05-05", "male")), "bob.json",
           complete=True)
    a = _latest(c, pid)
    assert a.decision == "no-contraindication-found"
    page = b.get(f"/clinic/patients/{pid}").text
    assert GREEN in page and "No clinical data." not in text(page)
    assert re.search(r"Medications\s+Provided\s+0\s+declared complete", text(page))


def test_screening_stored_without_coverage_is_not_shown_green(web: Web) -> None:
    """A screening stored before coverage was recorded proves nothing about its data."""
    c, b = web
    b.login("staff1")
    pid = b.new_patient("Old Record", gender="male", birth="1950-05-05")
    upload(b, pid, bundle(person("Old", "Record", "1950-05-05", "male")), "old.json",
           complete=True)
    with c.app.state.clinic.write() as s:  # type: ignore[attr-defined]
        a = s.scalar(select(StoredAssessment).where(StoredAssessment.patient_id == pid))
        assert a is not None and a.decision == "no-contraindication-found"
        a.document = {k: v for k, v in a.document.items() if k != "coverage"}
    page = b.get(f"/clinic/patients/{pid}").text
    assert GREEN not in page and "d-unverified" in page
    assert "data coverage not recorded" in text(page)
    assert "stored before data coverage was recorded" in text(page)
    assert GREEN not in b.get("/clinic").text


def test_blank_optional_answers_are_not_answered_and_unknown(web: Web) -> None:
    c, b = web
    b.login("staff1")
    pid = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    link = b.invite(pid)
    patient = new_browser(c)
    review = answer_all(patient, link, baseline_answers())  # required questions only
    r = patient.c.post(f"{link}/submit", data={"csrf_token": csrf(review.text)})
    assert r.status_code == 200
    form = build_form()
    clot = form.by_id["clot-now"].text
    result = text(r.text)
    assert "Questions you left blank" in result and f"{clot} — not answered" in result
    assert "eligible" not in result.lower() and "cleared" not in result.lower()
    assert "absent" not in result.lower()

    a = _latest(c, pid)
    doc: dict[str, Any] = a.document
    assert doc["coverage"]["questionnaire"]["status"] == "provided"
    assert doc["coverage"]["answer:clot-now"] == {"status": "not-provided",
                                                  "reason": "not answered"}
    assert doc["coverage"]["answer:pregnant-now"]["status"] == "provided"
    assert _status(doc, "active-thrombosis") == "unknown"
    assert _status(doc, "product-hypersensitivity") == "unknown"
    assert _status(doc, "pregnancy") == "absent"  # answered "no"

    page = b.get(f"/clinic/patients/{pid}").text
    words = text(page)
    assert re.search(re.escape(clot) + r"\s+Not answered", words)
    assert "No active thrombosis recorded" not in words
    status, card = _card(page, "active-thrombosis")
    assert status == "unknown"
    assert "unknown: not enough data" in card and f"“{clot}”: not answered" in card
    assert "Data available for screening" not in _finding_titles(page)[:1]
    report = text(b.get(f"/clinic/patients/{pid}/report?assessment={a.id}").text)
    assert re.search(re.escape(clot) + r"\s+Not answered", report)
    assert "No active thrombosis recorded" not in report


def test_unanswered_question_beside_record_data_is_still_not_answered(web: Web) -> None:
    """Conditions from a file decide the rule; the blank answer is still named."""
    c, b = web
    b.login("staff1")
    pid = b.new_patient("Ann Test", gender="female", birth="1990-01-01")
    upload(b, pid, bundle(person(), cancer()), "ann.json")
    link = b.invite(pid)
    patient = new_browser(c)
    review = answer_all(patient, link, baseline_answers())
    patient.c.post(f"{link}/submit", data={"csrf_token": csrf(review.text)})
    doc = _latest(c, pid).document
    assert doc["coverage"]["conditions"]["status"] == "provided"
    assert doc["coverage"]["answer:chronic-viral-infection"]["status"] == "not-provided"
    assert _status(doc, "chronic-viral-infection") == "absent"  # needs conditions or the answer
    page = b.get(f"/clinic/patients/{pid}").text
    question = build_form().by_id["chronic-viral-infection"].text
    status, card = _card(page, "chronic-viral-infection")
    assert status == "absent"
    assert f"Questionnaire: “{question}” not answered" in card
    assert "rests on the record's other data" in card


# --------------------------------------------------------------------------- gather


def _qr(answers: dict[str, Any]) -> dict[str, Any]:
    from msc_screen.questionnaire import to_response

    return to_response(build_form(), answers, response_id="qr-1", patient_ref="Patient/clinic",
                       authored=dt.datetime(2026, 11, 24, tzinfo=dt.UTC), completed=True)


def test_gather_merges_what_every_source_held() -> None:
    rs = get_ruleset()
    data = bundle(person(), cancer())
    got = gather("clinic", "female", "1990-01-01", [Source("upload-1-a.json", data)],
                 [_qr({"pregnant-now": "no"})])
    rec = got.record
    assert rec.id == "clinic" and not got.errors
    assert rec.seen.get("Condition") == 1 and rec.seen.get("QuestionnaireResponse") == 1
    assert rec.seen.get("Patient") == 2  # the clinic's own and the file's
    a = evaluate(rec, rs, dt.date(2026, 11, 24))
    assert a.coverage["conditions"].status == "provided"
    assert a.coverage["questionnaire"].status == "provided"
    assert a.coverage["answer:pregnant-now"].status == "provided"
    assert a.coverage["answer:clot-now"].status == "not-provided"
    assert a.decision == "contraindicated"


def test_gather_declares_only_the_complete_uploads_kinds() -> None:
    from msc_screen.engine.coverage import complete_kinds

    rs = get_ruleset()
    kinds = complete_kinds(rs, "all")
    plain = Source("upload-1-a.json", bundle(person(pid="a"), cancer(pid="a")))
    full = Source("upload-2-b.json", bundle(person(pid="b")), complete=True)
    rec = gather("clinic", None, None, [plain], [], kinds).record
    assert not rec.declared
    rec = gather("clinic", None, None, [plain, full], [], kinds).record
    assert set(rec.declared) == set(kinds) and "questionnaire" not in rec.declared
    assert all(v.status == "provided" for v in rec.declared.values())
    a = evaluate(rec, rs, dt.date(2026, 11, 24))
    assert a.coverage["medications"].status == "provided"


def test_merge_declared_keeps_incomplete() -> None:
    merged: dict[str, KindCoverage] = {}
    merge_declared(merged, {"conditions": KindCoverage("provided", "declared complete")})
    merge_declared(merged, {"conditions": KindCoverage("incomplete", "page limit")})
    merge_declared(merged, {"conditions": KindCoverage("provided", "declared complete")})
    assert merged["conditions"] == KindCoverage("incomplete", "page limit")
    merge_declared(merged, {"conditions": KindCoverage("incomplete", "timeout")})
    assert merged["conditions"] == KindCoverage("incomplete", "page limit; timeout")


def test_gather_uses_the_clinics_sex_and_warns_when_a_file_differs() -> None:
    data = bundle(person(gender="male"))
    rec = gather("clinic", "female", "1990-01-01", [Source("upload-1-a.json", data)], []).record
    assert rec.gender == "female"
    assert any("sex differs between sources" in w for w in rec.warnings)
    dead = bundle(person(deceased="2020-01-01"))
    rec = gather("clinic", "female", None, [Source("upload-1-a.json", dead)], []).record
    assert rec.deceased and rec.birth_date is not None  # birth date filled from the file
    assert orjson.loads(data)["entry"][0]["resource"]["gender"] == "male"
