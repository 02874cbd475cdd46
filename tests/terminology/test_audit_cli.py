"""``msc-screen terminology audit`` in a real process, over a small hand-built input
(``audit_inputs``): what is listed, with which counts and verdicts, in which order, in each
format; bad inputs; ``--top``, ``--kind`` and ``--root``."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from msc_screen.terminology.audit import CSV_COLUMNS

from .audit_inputs import (
    AMLODIPINE,
    EXPECTED,
    HYPERTENSION,
    MI,
    NET,
    ORDER,
    REVIEWED,
    UNNAMED,
    check_assumptions,
    reviewed_root,
    write_inputs,
)


def audit(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "msc_screen", "terminology", "audit",
                           *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def _json(r: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(r.stdout)
    return doc


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    check_assumptions()
    return write_inputs(tmp_path_factory.mktemp("audit"))


def test_lists_codes_in_no_value_set_with_counts_and_verdicts(inputs: Path) -> None:
    r = audit(inputs, "--format", "json", cwd=inputs.parent)
    # the bad file: exit 2, one line naming it, never a traceback; the good files are audited
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: {inputs / 'zz-bad.json'}: truncated JSON (input ends early)"]
    doc = _json(r)
    assert doc["patients"] == 3 and doc["codes"] == len(EXPECTED) == doc["shown"]
    assert doc["policy"]["name"] == "default" and doc["ruleset"]["sha256"]
    rows = {row["code"]: row for row in doc["rows"]}
    assert MI not in rows  # in a value set
    assert [row["code"] for row in doc["rows"]] == ORDER  # most patients first, then system, code
    for code, (system, patients, records, kinds, engine) in EXPECTED.items():
        row = rows[code]
        assert (row["system"], row["patients"], row["records"], row["kinds"], row["engine"]) \
            == (system, patients, records, kinds, engine), row
    assert rows[HYPERTENSION]["displays"] == ["Hypertension"]
    assert rows[HYPERTENSION]["outcomes"] == {"unmatched": 4}
    assert rows[HYPERTENSION]["system_name"] == "SNOMED CT"
    net = rows[NET]
    assert "active-malignancy" in net["rules"]
    assert net["outcomes"] == {"safety-net": 1}
    assert net["displays"] == ["Primary malignant neoplasm of colon (disorder)"]
    assert rows[UNNAMED]["displays"] == [] and rows[UNNAMED]["rules"] == []
    # behind a medicationReference to a Medication in the same transaction Bundle
    assert rows[AMLODIPINE]["displays"] == ["amlodipine 5 MG Oral Tablet"]


def test_reviewed_code_says_reviewed(inputs: Path, tmp_path: Path) -> None:
    clean = write_inputs(tmp_path, bad=False)
    r = audit(clean, "--format", "json", "--root", reviewed_root(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    rows = {row["code"]: row for row in _json(r)["rows"]}
    assert rows[REVIEWED]["engine"] == "reviewed"
    assert rows[REVIEWED]["outcomes"] == {"reviewed": 1} and rows[REVIEWED]["rules"] == []
    assert rows[NET]["engine"] == "safety-net"  # only the reviewed code is left alone
    # the packaged knowledge base has not reviewed it: the net fires
    assert _json(audit(clean, "--format", "json", cwd=tmp_path))["rows"][ORDER.index(REVIEWED)][
        "engine"] == "safety-net"


def test_table_names_systems_and_verdicts(inputs: Path) -> None:
    r = audit(inputs, cwd=inputs.parent)
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["patients", "records", "system", "code", "kind", "engine",
                                "display"]
    body = lines[1:1 + len(EXPECTED)]
    assert [line.split()[0] for line in body] == ["3", "2", "1", "1", "1", "1", "1"]
    first = body[0].split()
    assert first[:6] == ["3", "4", "SNOMED", "CT", HYPERTENSION, "condition"]
    net = next(line for line in body if NET in line)
    assert "safety net: active-malignancy" in net and "SNOMED CT" in net
    assert "LOINC" in body[1] and "NDC" in body[2] and "unnamed" in body[2]
    assert "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268" in body[-1]  # a local system: its URI
    assert lines[-1] == f"{len(EXPECTED)} code(s) in no value set the rules read, most " \
                        "patients first."


def test_csv_carries_canonical_uris_and_every_count(inputs: Path) -> None:
    r = audit(inputs, "--format", "csv", cwd=inputs.parent)
    assert r.returncode == 2
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    assert [b["code"] for b in body] == ORDER
    for b in body:
        system, patients, records, kinds, engine = EXPECTED[b["code"]]
        assert (b["system"], int(b["patients"]), int(b["records"]), b["kinds"], b["engine"]) \
            == (system, patients, records, ";".join(kinds), engine)
        counts = sum(int(b[f"{o}_records"])
                     for o in ("safety_net", "unmatched", "unnamed", "reviewed"))
        assert counts == records
    net = next(b for b in body if b["code"] == NET)
    assert "active-malignancy" in net["rules"].split(";") and net["safety_net_records"] == "1"
    assert net["system_name"] == "SNOMED CT"
    assert net["displays"] == "Primary malignant neoplasm of colon (disorder)"


def test_top_and_kind(inputs: Path) -> None:
    r = audit(inputs, "--format", "json", "--top", "2", cwd=inputs.parent)
    doc = _json(r)
    assert [row["code"] for row in doc["rows"]] == ORDER[:2]
    assert (doc["shown"], doc["codes"]) == (2, len(EXPECTED))
    t = audit(inputs, "--top", "2", cwd=inputs.parent)
    assert t.stdout.splitlines()[-1].startswith(f"2 of {len(EXPECTED)} code(s)")
    m = _json(audit(inputs, "--format", "json", "--kind", "medication", cwd=inputs.parent))
    assert [row["code"] for row in m["rows"]] == [UNNAMED, AMLODIPINE]
    assert m["kind"] == "medication"


def test_only_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("[1, 2]")
    r = audit(tmp_path / "x.json", tmp_path / "missing.json", cwd=tmp_path)
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in r.stderr
    assert "x.json" in err[0] and "missing.json" in err[1] and "no such file" in err[1]
    k = audit(tmp_path / "x.json", "--root", tmp_path / "no-kb", cwd=tmp_path)
    assert k.returncode == 2 and "not a knowledge-base directory" in k.stderr
