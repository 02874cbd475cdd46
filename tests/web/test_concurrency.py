"""20 patients submit at the same moment while a physician works the queue, against a real
uvicorn server on SQLite (WAL): no row is lost and the audit chain holds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from msc_screen.store.audit import verify
from msc_screen.store.clinic_models import (
    AuditEntry,
    QuestionnaireAnswer,
    Review,
    StoredAssessment,
)

from .helpers import Browser, answer_all, baseline_answers, csrf, live_server, make_app

N = 20


def test_simultaneous_submissions_and_reviewer(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with live_server(app) as base:
        staff = Browser(httpx.Client(base_url=base))
        staff.login("staff1")
        links = [staff.invite(staff.new_patient(f"Patient {i}")) for i in range(N)]
        # every patient has filled the form; only the final submit happens at once
        ready = []
        for i, link in enumerate(links):
            b = Browser(httpx.Client(base_url=base))
            answers = baseline_answers({"pregnant-now": "yes" if i % 2 else "no"})
            ready.append((b, link, csrf(answer_all(b, link, answers).text)))
        doc = Browser(httpx.Client(base_url=base, timeout=60))
        doc.login("doc1")
        start = threading.Barrier(N + 1)
        errors: list[str] = []
        signed: list[int] = []

        def submit(b: Browser, link: str, token: str) -> None:
            start.wait()
            r = b.c.post(f"{link}/submit", data={"csrf_token": token}, timeout=60)
            # post/redirect/get: a sent questionnaire redirects to its thank-you page
            if r.status_code != 303 or not r.headers["location"].endswith("/done"):
                errors.append(f"{link}: {r.status_code}")

        def reviewer() -> None:
            start.wait()
            seen: set[int] = set()
            deadline = time.monotonic() + 60
            while len(signed) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
                with app.state.clinic.read() as s:
                    rows = s.execute(select(StoredAssessment.patient_id,
                                            func.max(StoredAssessment.id))
                                     .group_by(StoredAssessment.patient_id)).all()
                for pid, aid in rows:
                    if pid in seen or len(signed) >= 5:
                        continue
                    seen.add(pid)
                    r = doc.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/signoff",
                                   {"assessment_id": str(aid), "outcome": "more-information-needed",
                                    "reason": "call the patient"}, follow_redirects=False)
                    if r.status_code == 303:
                        signed.append(pid)
                    elif r.status_code != 400:  # 400: a newer screening arrived meanwhile
                        errors.append(f"sign-off {pid}: {r.status_code}")

        threads = [threading.Thread(target=submit, args=x) for x in ready]
        threads.append(threading.Thread(target=reviewer))
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
    with app.state.clinic.read() as s:
        completed = s.scalar(select(func.count()).select_from(QuestionnaireAnswer)
                             .where(QuestionnaireAnswer.status == "completed"))
        assessments = s.scalar(select(func.count()).select_from(StoredAssessment))
        reviews = s.scalar(select(func.count()).select_from(Review))
        submits = s.scalar(select(func.count()).select_from(AuditEntry)
                           .where(AuditEntry.action == "questionnaire.submit"))
        result = verify(s)
    assert completed == N and assessments == N and submits == N
    assert reviews == len(signed) == 5
    assert result.ok, result
