"""Migrations apply to an empty database, downgrade to nothing, and apply again; 0004 carries
existing uploads over."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from msc_screen.store import Database, migrate
from msc_screen.store.migrate import alembic_config

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
CLINIC_TABLES = {"users", "web_sessions", "patients", "invitations", "questionnaire_responses",
                 "uploaded_records", "assessments", "reviews", "app_settings", "audit_head",
                 "audit_log"}


def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        return set(inspect(db.engine).get_table_names())
    finally:
        db.dispose()


def test_upgrade_from_empty_downgrade_and_again(db_url: str) -> None:
    assert not (_tables(db_url) & CLINIC_TABLES)
    migrate(db_url)
    assert _tables(db_url) >= CLINIC_TABLES
    assert "cds_feedback" in _tables(db_url)

    command.downgrade(alembic_config(db_url), "0001_cds_feedback")
    left = _tables(db_url)
    assert not (left & CLINIC_TABLES)
    assert "cds_feedback" in left

    command.downgrade(alembic_config(db_url), "base")
    assert not (_tables(db_url) - {"alembic_version"})

    migrate(db_url)
    assert _tables(db_url) >= CLINIC_TABLES


def _insert_upload(conn: Connection, pid: int, data: bytes, rid: int) -> None:
    conn.execute(text("INSERT INTO uploaded_records (id, patient_id, filename, data, created_at) "
                      "VALUES (:id, :pid, :f, :d, :t)"),
                 {"id": rid, "pid": pid, "f": f"file{rid}.json", "d": data, "t": NOW})


def test_0004_hashes_existing_uploads_and_keeps_one_live_copy(db_url: str) -> None:
    """Uploads stored before 0004 get their sha256, size and status; a file stored twice for
    one patient (the old behaviour) keeps its first upload live, the copy withdrawn; then at
    most one live upload per file and patient, and a downgrade refuses to revive the others."""
    migrate(db_url, "0003_cds_jwt_use")
    db = Database(db_url)
    try:
        with db.engine.begin() as conn:
            for pid in (1, 2):
                conn.execute(text("INSERT INTO patients (id, fhir_id, display_name, created_at) "
                                  "VALUES (:id, :f, 'P', :t)"),
                             {"id": pid, "f": f"fhir-{pid}", "t": NOW})
            _insert_upload(conn, 1, b'{"a": 1}', 1)
            _insert_upload(conn, 1, b'{"a": 1}', 2)  # the same file again
            _insert_upload(conn, 1, b'{"b": 2}', 3)
            _insert_upload(conn, 2, b'{"a": 1}', 4)  # the same file, another patient
        migrate(db_url)
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, sha256, size, status, complete, ended_reason "
                                     "FROM uploaded_records ORDER BY id")).all()
            cols = {c["name"] for c in inspect(conn).get_columns("patients")}
        a = hashlib.sha256(b'{"a": 1}').hexdigest()
        assert [(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows] == [
            (1, a, 8, "active", False), (2, a, 8, "withdrawn", False),
            (3, hashlib.sha256(b'{"b": 2}').hexdigest(), 8, "active", False),
            (4, a, 8, "active", False)]
        assert "duplicate of upload 1" in rows[1][5]
        assert "identifier" in cols
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(text("UPDATE uploaded_records SET status = 'pending' WHERE id = 2"))
        with db.engine.begin() as conn:  # withdrawn and cancelled copies do not count
            conn.execute(text("UPDATE uploaded_records SET status = 'cancelled' WHERE id = 2"))
        with pytest.raises(RuntimeError, match="cannot downgrade below 0004"):
            command.downgrade(alembic_config(db_url), "0003_cds_jwt_use")
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM uploaded_records WHERE status <> 'active'"))
        command.downgrade(alembic_config(db_url), "0003_cds_jwt_use")
        with db.engine.connect() as conn:
            cols = {c["name"] for c in inspect(conn).get_columns("uploaded_records")}
        assert "sha256" not in cols and "status" not in cols
        migrate(db_url)
    finally:
        db.dispose()
