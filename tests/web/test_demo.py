"""Demo seeding: accounts with printed passwords that work, demo patients screened by the
engine into the database, and an open questionnaire link."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from msc_screen.server.demo import seed
from msc_screen.store.clinic_models import StoredAssessment

from .helpers import csrf, make_app


def test_seed_accounts_patients_and_link(tmp_path: Path, synthea_dir: Path) -> None:
    app = make_app(tmp_path, users=False)
    info = seed(app, synthea_dir, "http://127.0.0.1", max_patients=3)
    assert info["patients"] == 3
    accounts = info["accounts"]
    assert isinstance(accounts, dict) and set(accounts) == {"demo-staff", "demo-physician",
                                                            "demo-admin"}
    with app.state.clinic.read() as s:
        assert s.scalar(select(func.count()).select_from(StoredAssessment)) == 3
    with TestClient(app, base_url="http://127.0.0.1") as c:
        page = c.get("/login")
        r = c.post("/login", data={"username": "demo-physician",
                                   "password": accounts["demo-physician"],
                                   "csrf_token": csrf(page.text)}, follow_redirects=False)
        assert r.status_code == 303
        queue = c.get("/clinic").text
        assert "Demo questionnaire patient" in queue
        assert queue.count('href="/clinic/patients/') == 4
        link = str(info["link"]).replace("http://127.0.0.1", "")
        assert c.get(link).status_code == 200
    again = seed(app, synthea_dir, "http://127.0.0.1", max_patients=3)
    assert again["patients"] == 0  # patients only on the first start
    assert again["accounts"] != accounts  # fresh passwords every start
