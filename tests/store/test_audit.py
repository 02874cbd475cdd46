"""The hash-chained audit log: appends link up, tampering of any kind is found, and
concurrent writers through the clinic service never fork or lose the chain."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, func, select, text, update
from typer.testing import CliRunner

from msc_screen.cli import app as cli_app
from msc_screen.store import Database, migrate
from msc_screen.store.audit import append, verify
from msc_screen.store.clinic_models import AuditEntry, AuditHead, QuestionnaireAnswer, Review


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    migrate(db_url)
    d = Database(db_url)
    yield d
    d.dispose()


def _fill(db: Database, n: int = 5) -> None:
    for i in range(n):
        with db.session() as s:
            append(s, f"user{i}", "test.action", f"Patient/{i}", {"n": i, "note": "ok"})


def test_chain_links_and_verifies(db: Database) -> None:
    _fill(db)
    with db.session() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
        res = verify(s)
    assert res.ok and res.rows == 5


def test_edited_row_is_found(db: Database) -> None:
    _fill(db)
    with db.session() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="mallory"))
    with db.session() as s:
        res = verify(s)
    assert not res.ok and res.first_bad == 3 and res.rows == 2
    assert "hash" in (res.reason or "")


def test_removed_rows_are_found(db: Database) -> None:
    _fill(db)
    with db.session() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    with db.session() as s:
        res = verify(s)
    assert not res.ok and res.first_bad == 2


def test_truncated_tail_is_found(db: Database) -> None:
    _fill(db)
    with db.session() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 5))
    with db.session() as s:
        res = verify(s)
    assert not res.ok and res.rows == 4


def test_rehashed_row_still_breaks_the_link(db: Database) -> None:
    """Rewriting a row and its own hash does not help: the next row's link breaks."""
    from msc_screen.store.audit import row_hash

    _fill(db)
    with db.session() as s:
        r = s.get(AuditEntry, 2)
        assert r is not None
        new = row_hash(r.seq, r.ts, "mallory", r.action, r.target, r.details, r.prev_hash)
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2)
                  .values(actor="mallory", hash=new))
    with db.session() as s:
        res = verify(s)
    assert not res.ok and res.first_bad == 3


def test_cli_verify_reports_first_broken_row(db: Database, db_url: str) -> None:
    _fill(db, 4)
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["audit", "verify", "--db", db_url])
    assert ok.exit_code == 0, ok.output
    assert "4 rows" in ok.output
    with db.session() as s:
        s.execute(text("UPDATE audit_log SET details = :d WHERE seq = 2"),
                  {"d": '{"n": 99, "note": "ok"}'})
    bad = runner.invoke(cli_app, ["audit", "verify", "--db", db_url])
    assert bad.exit_code == 2
    assert "row 2" in bad.output


def test_concurrent_writers_keep_one_chain(db: Database, db_url: str) -> None:
    """20 questionnaire submissions and a reviewer at once, through the clinic service."""
    from msc_screen.server.web.clinic import Clinic
    from msc_screen.server.web.config import WebConfig

    clinic = Clinic(db, WebConfig(), lambda: dt.datetime.now(dt.UTC))
    doc = clinic.create_user("doc", "a-long-password-1", "physician")
    tokens = []
    for i in range(20):
        p = clinic.create_patient("test", f"P{i}", "1980-01-01", "female" if i % 2 else "male")
        tokens.append((p.id, clinic.create_invitation(None, p.id)))
    before = _count(db, AuditEntry)
    errors: list[BaseException] = []
    start = threading.Barrier(21)

    def submit(tok: str, i: int) -> None:
        try:
            start.wait()
            answers = {"pregnant-now": "yes" if i % 2 else "no"}
            clinic.save_answers(tok, answers, final=True)
        except BaseException as exc:
            errors.append(exc)

    def reviewer() -> None:
        try:
            start.wait()
            done = 0
            while done < 10:
                with clinic.read() as s:
                    from msc_screen.store.clinic_models import StoredAssessment
                    got = s.scalars(select(StoredAssessment)).all()
                for a in got[done:done + 10]:
                    if done >= 10:
                        break
                    clinic.add_note(doc, a.patient_id, a.id, f"looked at {a.id}")
                    done += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(tok, i)) for i, (_, tok) in
               enumerate(tokens)]
    threads.append(threading.Thread(target=reviewer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert _count(db, QuestionnaireAnswer) == 20
    assert _count(db, Review) == 10
    # each submission: save + assessment entries; each note one entry
    assert _count(db, AuditEntry) == before + 20 * 2 + 10
    with db.session() as s:
        res = verify(s)
        head = s.get(AuditHead, 1)
    assert res.ok, res
    assert head is not None and head.seq == res.rows


def _count(db: Database, model: type) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)
