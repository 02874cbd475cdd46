"""Issue 13 item 4: every CDS call audited (who, tenant, user, patient, hook, coverage, cards
with uuids and rules), feedback joined to cards, and ``msc-screen cds report`` giving per
rule fired / accepted / overridden with reasons. Real uvicorn over real HTTP with signed JWTs;
the report through the real CLI, on SQLite and (where available) PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from msc_screen.cli import app as cli_app
from msc_screen.server.app import create_app
from msc_screen.store import Database
from msc_screen.store.models import CdsCall, CdsCallCard

from .cards_check import assert_valid_response, expected_rules, prefetched_resources
from .conftest import NOW, SPEC_ISS, SPEC_PUBLIC_JWKS, sign
from .fakefhir import prefetch_for

pytestmark = pytest.mark.xdist_group("cds-fhir")
PV = "/cds-services/msc-screen-patient-view"
OS = "/cds-services/msc-screen-order-sign"
MSC = {"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft",
       "intent": "order", "medicationCodeableConcept": {"text": "Ryoncil (remestemcel-L) IV"}}


def run_calls(settings: Any, live_app: Any, synthea_patient: dict[str, Any]) -> dict[str, Any]:
    """A patient-view, an order-sign with an MSC order, a refused call, and feedback."""
    pid = synthea_patient["id"]
    app = create_app(settings)
    tmpl = app.state.cds.services["msc-screen-patient-view"].prefetch
    pre = prefetch_for(synthea_patient["resources"], pid, tmpl)
    out: dict[str, Any] = {"pid": pid, "pre": pre}
    with live_app(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        def post(path: str, body: dict[str, Any]) -> httpx.Response:
            return http.post(path, json=body,
                             headers={"Authorization": "Bearer " + sign(srv.url + path)})

        ctx = {"userId": "Practitioner/dr-1", "patientId": pid}
        pv = post(PV, {"hook": "patient-view", "hookInstance": "hi-pv", "context": ctx,
                       "prefetch": pre})
        assert pv.status_code == 200
        out["pv"] = assert_valid_response(pv.json())
        draft = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": MSC}]}
        os_ = post(OS, {"hook": "order-sign", "hookInstance": "hi-os", "prefetch": pre,
                        "context": {**ctx, "draftOrders": draft}})
        assert os_.status_code == 200
        out["os"] = assert_valid_response(os_.json())
        bad = post(PV, {"hook": "patient-view", "hookInstance": "hi-bad", "context": ctx,
                        "fhirServer": "http://169.254.169.254/latest"})
        assert bad.status_code == 400
        first, info = out["os"][0], out["os"][-1]
        fb = {"feedback": [
            {"card": first["uuid"], "outcome": "overridden",
             "overrideReason": {"reason": first["overrideReasons"][0], "userComment": "ok"}},
            {"card": info["uuid"], "outcome": "accepted",
             "acceptedSuggestions": [{"id": s["uuid"]} for s in info.get("suggestions", [])]},
            {"card": str(uuid.uuid4()), "outcome": "accepted"},
        ]}
        r = post(OS + "/feedback", fb)
        assert r.status_code == 200 and r.json() == {"stored": 3}
    return out


def check_audit(db_url: str, out: dict[str, Any]) -> None:
    db = Database(db_url)
    try:
        with db.session() as s:
            calls = {c.hook_instance: c for c in s.scalars(select(CdsCall))}
            cards = s.execute(select(CdsCallCard.card_uuid, CdsCallCard.rule)).all()
    finally:
        db.dispose()
    pv, os_, bad = calls["hi-pv"], calls["hi-os"], calls["hi-bad"]
    assert (pv.iss, pv.tenant, pv.sub, pv.user_id, pv.patient_id, pv.hook, pv.status) == (
        SPEC_ISS, "2ddd6c3a", "client_id", "Practitioner/dr-1", out["pid"], "patient-view", 200)
    assert pv.decision and pv.coverage["conditions"] == "provided"
    assert [c["uuid"] for c in pv.cards or []] == [c["uuid"] for c in out["pv"]]
    assert bad.status == 400 and bad.cards is None and bad.duration_ms is not None
    assert os_.hook == "order-sign" and len(os_.cards or []) == len(out["os"])
    recorded = {u for u, _r in cards}
    assert {c["uuid"] for c in out["pv"] + out["os"]} <= recorded
    speaking = [r for r, _i in expected_rules(prefetched_resources(out["pre"]), NOW.date())]
    assert sorted(r for u, r in cards if u in {c["uuid"] for c in out["pv"]}) == speaking


def report(db_url: str) -> dict[str, Any]:
    res = CliRunner().invoke(cli_app, ["cds", "report", "--db", db_url, "--format", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def check_report(db_url: str, out: dict[str, Any]) -> None:
    r = report(db_url)
    assert r["hooks"]["patient-view"]["calls"] == 2
    assert r["hooks"]["patient-view"]["refused"] == 1
    assert r["hooks"]["order-sign"] == {"calls": 1, "calls_with_cards": 1,
                                        "cards": len(out["os"]), "refused": 0}
    first_rule = out["os"][0]["source"]["url"].rsplit("/", 1)[1]
    e = r["rules"][first_rule]
    assert e["fired"] == 2 and e["calls"] == 2  # patient-view and order-sign
    assert e["overridden"] == 1 and e["override_rate"] == 1.0
    assert e["override_reasons"] == {out["os"][0]["overrideReasons"][0]["code"]: 1}
    info_rules = [link["url"].rsplit("/", 1)[1] for link in out["os"][-1].get("links", [])]
    assert info_rules and all(r["rules"][x]["accepted"] == 1 for x in info_rules)
    assert r["feedback_without_a_recorded_card"] == 1
    text = CliRunner().invoke(cli_app, ["cds", "report", "--db", db_url])
    assert text.exit_code == 0 and first_rule in text.output and "override reasons" in text.output


@pytest.fixture
def jwt_settings(make_settings, tmp_path):
    p = tmp_path / "clients.json"
    p.write_text(json.dumps([{"iss": SPEC_ISS, "jwks": SPEC_PUBLIC_JWKS}]))
    return lambda **kw: make_settings(cds_clients=str(p), **kw)


def test_calls_are_audited_and_reported_on_sqlite(jwt_settings, live_app, synthea_patient):
    settings = jwt_settings()
    out = run_calls(settings, live_app, synthea_patient)
    check_audit(settings.db_url, out)
    check_report(settings.db_url, out)


def test_report_on_an_empty_or_missing_store(tmp_path):
    from msc_screen.store import migrate
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate(url)
    r = report(url)
    assert r["hooks"] == {} and r["rules"] == {}
    res = CliRunner().invoke(cli_app, ["cds", "report", "--db", url, "--since", "yesterday"])
    assert res.exit_code == 2 and "--since" in res.output


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    try:
        from store.pg import cluster, fresh_database
    except ImportError:
        pytest.skip("tests/store/pg.py not on sys.path")
    with cluster() as admin, fresh_database(admin) as url:
        yield url


@pytest.mark.postgres
def test_calls_are_audited_and_reported_on_postgres(pg_url, jwt_settings, live_app,
                                                    synthea_patient):
    settings = jwt_settings(db_url=pg_url)
    out = run_calls(settings, live_app, synthea_patient)
    check_audit(pg_url, out)
    check_report(pg_url, out)


def test_an_audit_the_store_cannot_take_never_fails_the_call(tmp_path, caplog):
    import datetime as dt
    import logging

    from msc_screen.server.cds.audit import CallAudit

    db = Database(f"sqlite:///{tmp_path / 'no-tables.db'}")  # never migrated
    try:
        with caplog.at_level(logging.ERROR, logger="msc_screen"):
            CallAudit("svc", dt.datetime(2019, 12, 31, tzinfo=dt.UTC),
                      patient_id="secret-patient-9").record(db)
    finally:
        db.dispose()
    assert "audit not written" in caplog.text and "secret-patient-9" not in caplog.text
