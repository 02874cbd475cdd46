"""``msc-screen notes extract|assert``: the JSON Lines contracts, bad lines, exit codes."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
from typer.testing import CliRunner

from msc_screen.cli import app
from msc_screen.notes import get_extractor
from msc_screen.notes.jsonl import assert_lines, extract_lines

runner = CliRunner()
MENTION_KEYS = ["rule", "text", "span", "negated", "historical", "family", "hypothetical",
                "uncertain", "section"]


def _lines(*objs: object) -> str:
    return "".join((o if isinstance(o, str) else orjson.dumps(o).decode()) + "\n"
                   for o in objs)


def test_extract_contract_from_a_file(tmp_path: Path) -> None:
    f = tmp_path / "notes.jsonl"
    f.write_text(_lines({"id": "n1", "text": "Currently 12 weeks pregnant. Denies DVT."},
                        {"id": 7, "text": "Nothing of note."}))
    r = runner.invoke(app, ["notes", "extract", str(f)])
    assert r.exit_code == 0, r.output
    out = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert [o["id"] for o in out] == ["n1", 7]
    m = out[0]["mentions"]
    assert [list(x) for x in m] == [MENTION_KEYS] * len(m)
    assert {(x["rule"], x["text"], x["negated"]) for x in m} == {
        ("pregnancy", "12 weeks pregnant", False), ("active-thrombosis", "DVT", True)}
    preg = next(x for x in m if x["rule"] == "pregnancy")
    assert preg["span"] == [10, 27]
    assert out[1]["mentions"] == []


def test_assert_contract_on_stdin() -> None:
    data = _lines({"id": "a", "text": "Patient denies chest pain.", "target": "chest pain"},
                  {"id": "b", "text": "Mother had breast cancer.", "target": "breast cancer"},
                  {"id": "c", "text": "History of stroke 5 years ago.", "target": "stroke"})
    r = runner.invoke(app, ["notes", "assert"], input=data)
    assert r.exit_code == 0, r.output
    out = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert list(out[0]) == ["id", "negated", "historical", "family", "hypothetical",
                            "uncertain"]
    assert out[0]["negated"] and not out[0]["historical"]
    assert out[1]["family"] and not out[1]["negated"]
    assert out[2]["historical"]


def test_bad_lines_are_named_and_the_rest_processed() -> None:
    data = _lines("not json", {"id": "x"}, ["a list"], {"text": "no id"},
                  {"id": "ok", "text": "No pneumonia.", "target": "pneumonia"},
                  {"id": "missing", "text": "Fever.", "target": "cough"})
    r = runner.invoke(app, ["notes", "assert", "-"], input=data)
    assert r.exit_code == 2
    err = r.stderr
    assert "line 1: not valid JSON" in err
    assert "line 2 (id x): 'text' is missing" in err
    assert "line 3: expected a JSON object" in err
    assert "line 4: 'id' is missing" in err
    assert "line 6 (id missing): the target does not occur" in err
    assert "Traceback" not in r.output
    out = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert [o["id"] for o in out] == ["ok", "missing"]
    assert out[0]["negated"] is True


def test_unreadable_file_is_bad_input(tmp_path: Path) -> None:
    r = runner.invoke(app, ["notes", "extract", str(tmp_path / "absent.jsonl")])
    assert r.exit_code == 2
    assert "cannot read" in r.stderr


def test_python_functions_stream() -> None:
    buf = io.BytesIO()
    errors: list[str] = []
    bad = extract_lines([b'{"id": 1, "text": "s/p MI"}', b"", b"{"], buf.write,
                        errors.append, get_extractor(), "mem")
    assert bad == 1
    assert len(errors) == 1 and errors[0].startswith("mem: line 3: not valid JSON")
    out = orjson.loads(buf.getvalue().splitlines()[0])
    assert out["mentions"][0]["rule"] == "recent-myocardial-infarction"
    assert out["mentions"][0]["historical"] is True
    buf = io.BytesIO()
    assert assert_lines(['{"id": "q", "text": "Rule out PE.", "target": "PE"}'], buf.write,
                        errors.append, get_extractor()) == 0
    assert orjson.loads(buf.getvalue())["uncertain"] is True


def test_extract_reads_gzip(tmp_path: Path) -> None:
    import gzip

    f = tmp_path / "notes.jsonl.gz"
    f.write_bytes(gzip.compress(_lines({"id": "g", "text": "Denies HIV."}).encode()))
    r = runner.invoke(app, ["notes", "extract", str(f)])
    assert r.exit_code == 0, r.output
    [m] = orjson.loads(r.stdout)["mentions"]
    assert m["rule"] == "chronic-viral-infection" and m["negated"] is True
