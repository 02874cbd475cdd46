"""The terminology audit in the batch: the report's data-quality section carries the table
(top codes, total count) and ``terminology-audit.csv`` the full list, byte for byte what
``msc-screen terminology audit --format csv`` writes for the same input — whatever the units,
workers or input format (the reader's filter passes most records over; its ``on_skip`` hook
counts them)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from msc_screen.batch import BatchOptions, plan, run_batch
from msc_screen.terminology.audit import CSV_COLUMNS
from terminology.audit_inputs import (
    EXPECTED,
    HYPERTENSION,
    NET,
    ORDER,
    check_assumptions,
    write_inputs,
)

from .conftest import AS_OF, batch

CSV = "terminology-audit.csv"


def cli(fmt: str, *inputs: Path) -> bytes:
    r = subprocess.run([sys.executable, "-m", "msc_screen", "terminology", "audit",
                        "--format", fmt, *map(str, inputs)], capture_output=True, timeout=600)
    assert r.returncode in (0, 2), r.stderr
    return r.stdout


def report_rows(report: str) -> list[list[str]]:
    """The cells of the report's terminology table, as text."""
    section = report[report.index('id="terminology"'):]
    table = section[section.index("<table>"):section.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


def test_report_and_csv_agree_with_the_cli(tmp_path: Path) -> None:
    check_assumptions()
    inp = write_inputs(tmp_path)
    out = tmp_path / "out"
    result = run_batch(BatchOptions(inputs=[str(inp)], as_of=AS_OF, out=out))
    assert result.errors == 1 and result.stats.total == 3
    data = (out / CSV).read_bytes()
    assert data == cli("csv", inp)
    assert data.splitlines()[0].decode() == ",".join(CSV_COLUMNS)
    assert [line.split(b",")[2].decode() for line in data.splitlines()[1:]] == ORDER
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Codes in no value set (terminology audit)" in report
    assert f"{len(EXPECTED)} distinct code(s) in the input are in no value set" in report
    assert "All of them are below" in report and "terminology-audit.csv" in report
    rows = report_rows(report)
    assert [r[3] for r in rows] == ORDER
    first = rows[0]
    assert first[:6] == ["3", "4", "SNOMED CT", HYPERTENSION, "condition", "unmatched"]
    net = rows[ORDER.index(NET)]
    assert net[5].startswith("safety net: active-malignancy")
    # the report's cells are the CLI table's, line for line
    table = cli("table", inp).decode().splitlines()[1:1 + len(EXPECTED)]
    for line, r in zip(table, rows, strict=True):
        assert line.split() == " ".join(r).split()


def test_top_n_in_the_report_all_in_the_csv(population: dict[str, Path], tmp_path: Path
                                             ) -> None:
    out = batch([population["bundles"]], tmp_path / "b", workers=2)
    lines = out[CSV].splitlines()
    total = len(lines) - 1
    assert total > 25  # the synthetic population carries more codes than the report shows
    report = out["report.html"].decode()
    assert f"{total:,} distinct code(s)" in report
    assert "The 25 carried by the most patients are below" in report
    rows = report_rows(report)
    assert [r[3] for r in rows] == [line.split(b",")[2].decode() for line in lines[1:26]]
    assert out[CSV] == cli("csv", population["bundles"])


def test_units_workers_and_ndjson_agree(population: dict[str, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small units and partitions, merged in the parent, give the one-tally CLI's list;
    the same patients as an NDJSON export too."""
    monkeypatch.setattr(plan, "MIN_BUNDLES_PER_UNIT", 4)
    monkeypatch.setattr(plan, "MAX_BUNDLES_PER_UNIT", 4)
    monkeypatch.setattr(plan, "PARTITION_BYTES", 64 * 1024)
    expected = cli("csv", population["bundles"])
    b = run_batch(BatchOptions(inputs=[str(population["bundles"])], as_of=AS_OF,
                               out=tmp_path / "b", workers=2))
    n = run_batch(BatchOptions(inputs=[str(population["ndjson"])], as_of=AS_OF,
                               out=tmp_path / "n", workers=1))
    assert b.units > 10 and n.units > 1
    assert (tmp_path / "b" / CSV).read_bytes() == expected
    assert (tmp_path / "n" / CSV).read_bytes() == expected


@pytest.mark.slow
def test_synthea_batch_and_cli_agree(synthea_dir: Path, tmp_path: Path) -> None:
    out = batch([synthea_dir], tmp_path / "s", workers=2)
    assert out[CSV] == cli("csv", synthea_dir)
    assert out[CSV].count(b"\n") > 100
    rows = report_rows(out["report.html"].decode())
    table = cli("table", synthea_dir).decode().splitlines()[1:26]
    assert len(rows) == 25
    for line, r in zip(table, rows, strict=True):
        assert line.split() == " ".join(r).split()
