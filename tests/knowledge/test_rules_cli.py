"""`msc-screen rules lint|list|show` through the real Typer app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from msc_screen.cli import app

runner = CliRunner()


def test_lint_exits_zero_on_the_shipped_rules() -> None:
    r = runner.invoke(app, ["rules", "lint"])
    assert r.exit_code == 0, r.output
    assert "0 error(s)" in r.output


def test_lint_exits_one_on_a_bad_knowledge_base(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from msc_screen.knowledge.loader import package_root

    root = tmp_path / "kb"
    shutil.copytree(package_root(), root)
    vs = root / "valuesets" / "recent-cardiovascular-events.yaml"
    vs.write_text(vs.read_text(encoding="utf-8").replace("230690007", "230690008"),
                  encoding="utf-8")
    r = runner.invoke(app, ["rules", "lint", "--root", str(root), "--json"])
    assert r.exit_code == 1
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert any(x["check"] == "snomed" and "230690008" in x["message"] for x in rows)


def test_list_shows_every_rule() -> None:
    r = runner.invoke(app, ["rules", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 18
    assert [r["id"] for r in rows[:2]] == ["data-coverage", "pregnancy"]  # report order
    assert {"id", "title", "category", "origin", "severity"} <= set(rows[0])
    table = runner.invoke(app, ["rules", "list"])
    assert table.exit_code == 0
    assert "recent-myocardial-infarction" in table.output


def test_show_renders_rationale_citations_parameters() -> None:
    r = runner.invoke(app, ["rules", "show", "recent-myocardial-infarction"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "Hare JM" in text and "Rationale" in text and "window_days = 90" in text
    assert "Source attributes" in text


def test_show_json_under_a_policy() -> None:
    r = runner.invoke(app, ["rules", "show", "recent-myocardial-infarction", "--json",
                            "--policy", "acute-mi-28d"])
    assert r.exit_code == 0, r.output
    entry = json.loads(r.stdout)
    assert entry["parameters"]["window_days"]["value"] == 28
    assert entry["parameters"]["window_days"]["default"] == 90
    assert entry["policy"]["name"] == "acute-mi-28d"
    assert entry["source_attributes"]["release_date"]


def test_show_unknown_rule_is_bad_input() -> None:
    r = runner.invoke(app, ["rules", "show", "no-such-rule"])
    assert r.exit_code == 2
    assert "no-such-rule" in r.output
