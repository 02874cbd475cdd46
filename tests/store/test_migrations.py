"""Migrations apply to an empty database, downgrade to nothing, and apply again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from msc_screen.store import Database, migrate
from msc_screen.store.migrate import alembic_config

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
