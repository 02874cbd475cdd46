"""The demo patients get the decisions they were designed for (issue 2 item 7)."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from msc_screen import screen, screen_all
from msc_screen.cli import app
from msc_screen.knowledge import get_ruleset
from msc_screen.synth.demo import build_demo, write_demo

AS_OF = dt.date(2026, 3, 1)
DEMO = build_demo(AS_OF)


def test_every_rule_has_a_demo_patient_and_there_are_clean_ones():
    designed = {p.rule for p in DEMO}
    assert {r.id for r in get_ruleset().rules} <= designed
    assert sum(p.rule is None for p in DEMO) >= 2


@pytest.mark.parametrize("patient", DEMO, ids=[p.id for p in DEMO])
def test_demo_decision_matches_design(patient):
    a = screen(patient.bundle(), as_of=AS_OF)
    assert a.decision == patient.expected_decision
    statuses = {f.rule: f.status for f in a.findings}
    if patient.rule is not None:
        assert statuses[patient.rule] == patient.expected_status
    assert {f.rule for f in a.present} <= set(patient.allowed_present)


def test_demo_is_generated_deterministically(tmp_path):
    write_demo(tmp_path / "a", AS_OF)
    write_demo(tmp_path / "b", AS_OF)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files and files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_demo_command_prints_the_table(tmp_path):
    out = tmp_path / "demo"
    r = CliRunner().invoke(app, ["demo", "--out", str(out), "--as-of", AS_OF.isoformat(),
                                 "--no-serve"])
    assert r.exit_code == 0, r.output
    assert "demo-pregnancy" in r.output and "contraindicated" in r.output
    assert len(screen_all(out, AS_OF)) == len(DEMO)
