"""Bad input: every case gets exit 2 and a message naming the file (and resource/field where
known); a good file beside it is still screened; never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msc_screen.cli import app

GOOD = {
    "resourceType": "Bundle", "type": "collection",
    "entry": [{"resource": {"resourceType": "Patient", "id": "good-1", "gender": "male",
                            "birthDate": "1970-01-01"}}],
}

CASES: dict[str, tuple[bytes, str]] = {
    "empty.json": (b"", "empty input"),
    "notjson.json": (b"this is not json", "not valid JSON"),
    "truncated.json": (b'{"resourceType": "Bundle", "entry": [', "truncated"),
    "array.json": (b"[1, 2, 3]", "array"),
    "nonfhir.json": (b'{"name": "Alice", "age": 3}', "no resourceType"),
    "unknown.json": (b'{"resourceType": "Spaceship", "id": "x"}', "unknown resourceType"),
    "garbage.json": (bytes(range(256)) * 4, "not valid JSON"),
    "wrongtype.json": (json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Condition", "id": "c9", "onsetDateTime": 20190101,
                      "subject": {"reference": "Patient/x"}}}]}).encode(), "onsetDateTime"),
    "baddate.json": (json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "x"}},
        {"resource": {"resourceType": "Condition", "id": "c7", "onsetDateTime": "2024-02-31",
                      "code": {"text": "flu"}, "subject": {"reference": "Patient/x"}}}]}).encode(),
                    "impossible date"),
    "deep.json": (b'{"resourceType":"Patient","id":"d","extension":' + b"[" * 100_000
                  + b"]" * 100_000 + b"}", "nested too deeply"),
    "badgzip.json.gz": (b"\x1f\x8b\x08\x00garbage", "gzip"),
    "badline.ndjson": (b'{"resourceType":"Patient","id":"n1"}\n{"resourceType":\n', "line 2"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_beside_good_file(tmp_path: Path, name: str) -> None:
    data, expect = CASES[name]
    bad = tmp_path / name
    bad.write_bytes(data)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    res = CliRunner().invoke(app, ["screen", str(bad), str(good), "--as-of", "2020-01-01",
                                   "--format", "json"])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
    assert str(bad) in res.stderr
    assert expect.lower() in res.stderr.lower()
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
    assert [x["patient"]["id"] for x in lines] == ["good-1"]


def test_bad_input_messages_do_not_repeat_patient_values(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"resourceType": "Patient", "id": "x", "birthDate": "1961-02-30"}))
    res = CliRunner().invoke(app, ["screen", str(bad)])
    assert res.exit_code == 2
    assert "1961" not in res.stderr and "Patient/x" in res.stderr and "birthDate" in res.stderr


def test_missing_path(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    res = CliRunner().invoke(app, ["screen", str(tmp_path / "nope.json"), str(good), "-f", "json"])
    assert res.exit_code == 2
    assert "no such file" in res.stderr and "nope.json" in res.stderr
    assert "good-1" in res.stdout


def test_bad_as_of_and_bad_policy_are_clear_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    res = CliRunner().invoke(app, ["screen", str(good), "--as-of", "yesterday"])
    assert res.exit_code == 2 and "as-of" in res.stderr
    res = CliRunner().invoke(app, ["screen", str(good), "--policy", "no-such-policy"])
    assert res.exit_code == 2 and "no such policy" in res.stderr


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"{")
    proc = subprocess.run([sys.executable, "-m", "msc_screen", "screen", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "bad.json" in proc.stderr
