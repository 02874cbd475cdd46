"""The admin page of the CDS Hooks report (issue 13 item 4): admins only, the same figures as
``msc-screen cds report``."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from msc_screen.server.cds.audit import CallAudit
from msc_screen.store.models import CdsFeedback
from web.helpers import Browser, make_app  # tests/, on sys.path like this package

WHEN = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def seed(app) -> None:
    db = app.state.db
    card = {"uuid": "card-1", "indicator": "warning",
            "source": {"url": "https://cds.example/rules/active-infection"}}
    a = CallAudit("msc-screen-patient-view", WHEN, iss="https://ehr.example", hook="patient-view",
                  patient_id="p1", cards=[card])
    a.record(db)
    CallAudit("msc-screen-patient-view", WHEN, hook="patient-view", patient_id="p2").record(db)
    with db.session() as s:
        s.add(CdsFeedback(service_id="msc-screen-patient-view", card_uuid="card-1",
                          outcome="overridden", received_at=WHEN,
                          override_reason={"reason": {"code": "record-incorrect"}}))


def test_admin_sees_the_report_and_others_do_not(tmp_path):
    app = make_app(tmp_path)
    seed(app)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        anon = c.get("/admin/cds", follow_redirects=False)
        assert anon.status_code in (303, 401, 403)
        b = Browser(c)
        b.login("staff1")
        assert c.get("/admin/cds", follow_redirects=False).status_code == 403
    with TestClient(app, base_url="http://127.0.0.1") as c:
        b = Browser(c)
        b.login("admin1")
        r = c.get("/admin/cds")
        assert r.status_code == 200
        html = r.text
        assert "active-infection" in html and "record-incorrect: 1" in html
        assert "1 (50%)" in html  # 2 patient-view calls, 1 showed a card
        later = c.get("/admin/cds?since=2026-11-25").text
        assert "No calls recorded." in later
