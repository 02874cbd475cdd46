"""Feedback persistence and the store base (migrations, SQLite pragmas)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text

from msc_screen.server.app import create_app
from msc_screen.store import Database, migrate
from msc_screen.store.models import CdsFeedback

FB = "/cds-services/msc-screen-patient-view/feedback"


@pytest.fixture
def client(make_settings):
    with TestClient(create_app(make_settings(insecure_no_auth=True))) as c:
        yield c


def test_feedback_is_stored(client):
    body = {"feedback": [
        {"card": "card-1", "outcome": "accepted", "acceptedSuggestions": [{"id": "s-1"}],
         "outcomeTimestamp": "2019-12-31T12:00:00Z"},
        {"card": "card-2", "outcome": "overridden",
         "overrideReason": {"reason": {"code": "record-incorrect", "system": "x"}}},
    ]}
    r = client.post(FB, json=body)
    assert r.status_code == 200 and r.json() == {"stored": 2}
    db: Database = client.app.state.db
    with db.session() as s:
        rows = s.scalars(select(CdsFeedback).order_by(CdsFeedback.card_uuid)).all()
        assert [(x.card_uuid, x.outcome) for x in rows] == [("card-1", "accepted"),
                                                            ("card-2", "overridden")]
        assert rows[0].accepted_suggestions == ["s-1"]
        assert rows[1].override_reason["reason"]["code"] == "record-incorrect"


@pytest.mark.parametrize("body, needle", [
    ({"feedback": [{"card": "c", "outcome": "ignored"}]}, "outcome"),
    ({"feedback": [{"outcome": "accepted"}]}, "card"),
    ({"nothing": 1}, "feedback"),
])
def test_bad_feedback_is_400(client, body, needle):
    r = client.post(FB, json=body)
    assert r.status_code == 400
    assert needle in r.json()["issue"][0]["diagnostics"]


def test_feedback_for_unknown_service_is_404(client):
    r = client.post("/cds-services/nope/feedback", json={"feedback": []})
    assert r.status_code == 404


def test_migrate_is_idempotent_and_sqlite_uses_wal(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    migrate(url)
    db = Database(url)
    try:
        assert "cds_feedback" in inspect(db.engine).get_table_names()
        with db.session() as s:
            assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert s.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        db.dispose()


def test_postgres_urls_use_psycopg():
    from msc_screen.store.db import normalise_url
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
