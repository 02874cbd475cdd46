"""Synthetic populations: deterministic per seed, and every planted label holds."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import yaml
from typer.testing import CliRunner

from msc_screen import screen_all
from msc_screen.cli import app
from msc_screen.knowledge import get_ruleset
from msc_screen.synth import SynthConfig, generate, load_prevalence

AS_OF = dt.date(2026, 1, 1)


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_same_files_other_seed_differs(tmp_path):
    generate(SynthConfig(40, tmp_path / "a", seed=4, as_of=AS_OF))
    generate(SynthConfig(40, tmp_path / "b", seed=4, as_of=AS_OF))
    generate(SynthConfig(40, tmp_path / "c", seed=5, as_of=AS_OF))
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a")["labels.csv"] != _files(tmp_path / "c")["labels.csv"]


def test_planted_labels_hold_and_every_rule_is_planted(tmp_path):
    out = tmp_path / "pop"
    prev = load_prevalence()
    prev["rules"] = {k: 0.5 for k in prev["rules"]}  # plenty of every trigger
    generate(SynthConfig(160, out, "bundles", seed=9, as_of=AS_OF), prev)
    assessments = {a.patient_id: a for a in screen_all(out, AS_OF)}
    assert len(assessments) == 160
    labels = list(csv.DictReader((out / "labels.csv").open()))
    planted = {(r["rule"], r["planted_status"]) for r in labels}
    for rule in get_ruleset().rules:
        if all(c.kind == "coverage" for c in rule.present_if):
            continue  # about the record's data, not a trigger: checked below
        assert (rule.id, "present") in planted or (rule.id, "absent") in planted, rule.id
    # every synthetic chart holds clinical data (a problem list, an allergy status, labs)
    assert all(next(f for f in a.findings if f.rule == "data-coverage").status == "absent"
               for a in assessments.values())
    for row in labels:
        status = {f.rule: f.status for f in assessments[row["patient_id"]].findings}
        assert status[row["rule"]] == row["planted_status"], row


def test_zero_prevalence_plants_nothing(tmp_path):
    f = tmp_path / "prev.yaml"
    f.write_text(yaml.safe_dump({"default": 0.0, "rules": {"pregnancy": 0.0}}))
    prev = load_prevalence(f)
    prev["rules"] = {k: 0.0 for k in prev["rules"]}
    counts = generate(SynthConfig(30, tmp_path / "z", seed=1, as_of=AS_OF), prev)
    assert sum(counts.values()) == 0


def test_cli_writes_ndjson_export(tmp_path):
    r = CliRunner().invoke(app, ["synth", "--patients", "12", "--out", str(tmp_path / "x"),
                                 "--format", "ndjson", "--seed", "2", "--gzip"])
    assert r.exit_code == 0, r.output
    names = {p.name for p in (tmp_path / "x").iterdir()}
    assert {"Patient.ndjson.gz", "Condition.ndjson.gz", "labels.csv"} <= names
