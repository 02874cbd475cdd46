"""Every shared Synthea bundle screens without error at three as-of dates, and known episodes
in those records give sensible findings at dates inside them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from msc_screen.engine import evaluate
from msc_screen.fhir.reader import read_file
from msc_screen.fhir.record import build_records
from msc_screen.knowledge import get_ruleset
from msc_screen.model import DECISIONS, PatientRecord

pytestmark = pytest.mark.xdist_group("synthea")

AS_OF_DATES = (dt.date(2005, 1, 1), dt.date(2015, 6, 30), dt.date(2019, 12, 31))


@pytest.fixture(scope="module")
def records(synthea_dir: Path) -> list[PatientRecord]:
    out: list[PatientRecord] = []
    for f in sorted(synthea_dir.glob("*.json.gz")):
        recs, errs = build_records([read_file(f)])
        assert not errs, errs
        assert len(recs) == 1
        out.extend(recs)
    return out


def test_every_bundle_screens_at_three_dates(records: list[PatientRecord]) -> None:
    rs = get_ruleset()
    decisions: dict[str, int] = {}
    for rec in records:
        for day in AS_OF_DATES:
            a = evaluate(rec, rs, day)
            assert a.decision in DECISIONS
            assert len(a.findings) == len(rs.rules)
            assert a.to_json() == evaluate(rec, rs, day).to_json()
            decisions[a.decision] = decisions.get(a.decision, 0) + 1
    # a population this size is neither all clear nor all contraindicated
    assert decisions.get("contraindicated", 0) > 0
    assert decisions.get("no-contraindication-found", 0) + decisions.get(
        "needs-information", 0) > 0


def _episodes(records: list[PatientRecord], code: str
              ) -> list[tuple[PatientRecord, dt.date, dt.date | None, str]]:
    out = []
    for rec in records:
        for c in rec.conditions:
            if any(x.code == code for x in c.codings) and c.onset is not None:
                end = c.abatement.lo if c.abatement else None
                out.append((rec, c.onset.lo, end, c.reference))
    return out


def _finding(rec: PatientRecord, day: dt.date, rule: str) -> tuple[str, list[str]]:
    rs = get_ruleset()
    a = evaluate(rec, rs, day)
    f = next(f for f in a.findings if f.rule == rule)
    return f.status, [e.reference for e in f.evidence]


@pytest.mark.parametrize(("code", "rule"), [
    ("72892002", "pregnancy"),
    ("254637007", "active-malignancy"),
    ("363406005", "active-malignancy"),
    ("233604007", "active-infection"),
    ("22298006", "recent-myocardial-infarction"),
])
def test_condition_episode_is_found_inside_it(records: list[PatientRecord], code: str,
                                              rule: str) -> None:
    eps = _episodes(records, code)
    assert eps, f"no {code} episodes in the shared data"
    for rec, onset, end, ref in eps:
        day = onset + dt.timedelta(days=3)
        if end is not None and end <= day:
            continue
        status, refs = _finding(rec, day, rule)
        assert status == "present", (rec.id, ref, day)
        assert ref in refs


def test_pregnancy_is_not_current_after_the_episode_ends(records: list[PatientRecord]) -> None:
    checked = 0
    for rec, onset, end, ref in _episodes(records, "72892002"):
        if end is None:
            continue
        day = end + dt.timedelta(days=30)
        _status, refs = _finding(rec, day, "pregnancy")
        assert ref not in refs
        checked += 1
    assert checked > 10


def test_myocardial_infarction_stops_being_recent_after_the_window(
        records: list[PatientRecord]) -> None:
    window = get_ruleset().rule("recent-myocardial-infarction").parameters
    days = next(v for v in window.values() if isinstance(v, int))
    for rec, onset, _end, ref in _episodes(records, "22298006"):
        _, refs = _finding(rec, onset + dt.timedelta(days=days + 1), "recent-myocardial-infarction")
        assert ref not in refs


def test_deceased_patients_are_flagged(records: list[PatientRecord]) -> None:
    dead = [r for r in records if r.deceased and r.deceased_date is not None]
    assert dead
    rs = get_ruleset()
    for rec in dead[:10]:
        assert rec.deceased_date is not None
        a = evaluate(rec, rs, rec.deceased_date.lo + dt.timedelta(days=1))
        assert any("deceased" in w for w in a.warnings)
