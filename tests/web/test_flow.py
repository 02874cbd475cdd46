"""The clinic workflow through the HTTP pages: questionnaire → result → queue → findings →
uploads → sign-off → history and report; admin users and policy."""

from __future__ import annotations

import gzip
import html
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from msc_screen.knowledge import get_ruleset
from msc_screen.server.demo import _demographics
from msc_screen.store.audit import verify
from msc_screen.store.clinic_models import QuestionnaireAnswer, Review, StoredAssessment

from .conftest import new_browser
from .helpers import Browser, answer_all, baseline_answers, csrf, text


def _pregnant_patient(c: TestClient, b: Browser) -> tuple[int, str]:
    b.login("staff1")
    pid = b.new_patient("Pat Pregnant")
    link = b.invite(pid)
    patient = new_browser(c)
    review = answer_all(patient, link, baseline_answers({"pregnant-now": "yes",
                                                          "pregnancy-weeks": "14"}))
    assert "How many weeks pregnant" in review.text and "14" in text(review.text)
    r = patient.c.post(f"{link}/submit", data={"csrf_token": csrf(review.text)})
    assert r.status_code == 200
    return pid, r.text


def test_pregnant_patient_result_physician_sign_off(web: tuple[TestClient, Browser],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c, b = web
    pid, result = _pregnant_patient(c, b)
    words = text(result)
    assert "A physician will discuss this with you" in words
    own = " ".join(get_ruleset().rule("pregnancy").definition.patient_text.split())
    assert own in html.unescape(words)  # the rule's own patient text
    assert "eligible" not in words.lower() and "cleared" not in words.lower()
    assert "FDA" in words  # patient-safety information

    queue = text(b.get("/clinic").text)
    assert "Pat Pregnant" in queue and "Contraindication reported" in queue
    filtered = text(b.get("/clinic?decision=no-contraindication-found").text)
    assert "Pat Pregnant" not in filtered

    page = b.get(f"/clinic/patients/{pid}").text
    assert "questionnaire" in page and "pregnant-now" in page  # evidence with its source
    assert "Rationale" in page and "Citations" in page

    doc = new_browser(c)
    doc.login("doc1")
    with c.app.state.clinic.read() as s:
        aid = s.scalar(select(StoredAssessment.id).where(StoredAssessment.patient_id == pid))
    r = doc.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/signoff",
                   {"assessment_id": str(aid), "outcome": "proceed-to-consultation",
                    "reason": ""})
    assert r.status_code == 400 and "reason is required" in r.text
    r = doc.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/signoff",
                   {"assessment_id": str(aid), "outcome": "proceed-to-consultation",
                    "reason": "Test was negative on 24 Nov; patient mistaken"},
                   follow_redirects=False)
    assert r.status_code == 303
    page = text(doc.get(f"/clinic/patients/{pid}").text)
    assert "Test was negative on 24 Nov" in page and "doc1" in page
    report = doc.get(f"/clinic/patients/{pid}/report?assessment={aid}")
    assert report.status_code == 200 and "Pre-screening report" in report.text
    assert "Proceed to consultation" in text(report.text)
    with c.app.state.clinic.read() as s:
        assert s.scalar(select(Review.outcome)) == "proceed-to-consultation"
        qr = s.scalar(select(QuestionnaireAnswer))
        assert qr is not None and qr.status == "completed"
        assert verify(s).ok
    # no patient data in the application's logs
    assert "Pat Pregnant" not in caplog.text and "Test was negative" not in caplog.text
    assert "1990-01-01" not in caplog.text


def test_stale_sign_off_is_refused(web: tuple[TestClient, Browser]) -> None:
    c, b = web
    pid, _ = _pregnant_patient(c, b)
    doc = new_browser(c)
    doc.login("doc1")
    page = doc.get(f"/clinic/patients/{pid}").text
    # a screening that changes the findings arrives meanwhile (issue 14: a re-screen that
    # changes nothing keeps the page's sign-off valid, test_round2.py)
    link = b.invite(pid)
    patient = new_browser(c)
    review = answer_all(patient, link, baseline_answers({"pregnant-now": "no",
                                                          "cancer-now": "yes"}))
    patient.c.post(f"{link}/submit", data={"csrf_token": csrf(review.text)})
    with c.app.state.clinic.read() as s:
        first = s.scalar(select(StoredAssessment.id).order_by(StoredAssessment.id))
    r = doc.c.post(f"/clinic/patients/{pid}/signoff",
                   data={"assessment_id": str(first), "outcome": "not-a-candidate",
                         "csrf_token": csrf(page)})
    assert r.status_code == 400 and "changed" in r.text


def test_upload_rescreens_and_bad_files_are_explained(web: tuple[TestClient, Browser],
                                                       synthea_dir: Path) -> None:
    c, b = web
    b.login("staff1")
    bundle = sorted(synthea_dir.glob("*.json.gz"))[0]
    name, _, _ = _demographics(gzip.decompress(bundle.read_bytes()), "?")
    pid = b.new_patient(name, gender="", birth="")  # the file's person: read without asking
    page = b.get(f"/clinic/patients/{pid}").text
    r = b.c.post(f"/clinic/patients/{pid}/upload",
                 data={"csrf_token": csrf(page)},
                 files={"file": ("bad.json", b'{"resourceType": "Bundle", "entry": [1]}',
                                 "application/json")})
    assert r.status_code == 400 and "bad.json" in r.text and "not accepted" in r.text
    r = b.c.post(f"/clinic/patients/{pid}/upload", data={"csrf_token": csrf(page)},
                 files={"file": (bundle.name[:-3], gzip.decompress(bundle.read_bytes()),
                                 "application/fhir+json")}, follow_redirects=False)
    assert r.status_code == 303
    with c.app.state.clinic.read() as s:
        a = s.scalar(select(StoredAssessment).where(StoredAssessment.patient_id == pid))
        assert a is not None and a.trigger == "upload"
        assert len(a.ruleset_sha256) == 64 and a.policy_name
    page = b.get(f"/clinic/patients/{pid}").text
    assert bundle.name[:-3] in page and "Latest screening" in page


def test_admin_manages_users_and_policy(web: tuple[TestClient, Browser]) -> None:
    _c, b = web
    b.login("admin1")
    r = b.submit("/admin", "/admin/users", {"username": "nurse", "password": "short",
                                            "role": "staff"})
    assert r.status_code == 400 and "12 characters" in r.text
    r = b.submit("/admin", "/admin/users", {"username": "nurse",
                                            "password": "a-long-enough-pass", "role": "staff"},
                 follow_redirects=False)
    assert r.status_code == 303 and "nurse" in b.get("/admin").text
    page = b.get("/admin").text
    assert 'name="policy" value="default"' in page
    r = b.submit("/admin", "/admin/policy", {"policy": "no-such-policy"})
    assert r.status_code == 400
    # a policy change needs a reason and the confirmation box (issue 14), then redirects
    r = b.submit("/admin", "/admin/policy", {"policy": "default", "confirm": "yes"})
    assert r.status_code == 400 and "reason" in r.text
    r = b.submit("/admin", "/admin/policy", {"policy": "default", "reason": "audit said so"})
    assert r.status_code == 400 and "confirmation" in r.text
    r = b.submit("/admin", "/admin/policy", {"policy": "default", "reason": "audit said so",
                                             "confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert "Policy saved" in b.get(r.headers["location"]).text
    with _c.app.state.clinic.read() as s:  # type: ignore[attr-defined]
        from msc_screen.store.clinic_models import AuditEntry

        e = s.scalars(select(AuditEntry).where(AuditEntry.action == "policy.set")).one()
    assert e.details["reason"] == "audit said so" and e.actor == "admin1"


def test_fhir_questionnaire_endpoint(web: tuple[TestClient, Browser]) -> None:
    c, _ = web
    r = c.get("/fhir/Questionnaire/msc-prescreen")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "Questionnaire" and body["item"]
