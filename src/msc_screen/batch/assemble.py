"""Assemble the final outputs from completed unit files, streaming (memory is one unit).

Units are read in plan order and each unit's patients are already in id order, so output order
is fixed by the inputs, never by which worker finished first. Outputs are written to temporary
names and renamed at the end: a kill during assembly leaves no half-written output.
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..knowledge.compiled import CompiledRuleset
from .plan import Manifest, Unit, WorkDir
from .work import AGE_BANDS, UNKNOWN, quality_key

OUTPUTS = ("assessments.ndjson", "summary.parquet", "summary.csv", "errors.ndjson",
           "report.html")
BANDS = [b[2] for b in AGE_BANDS] + [UNKNOWN]


@dataclass
class Stats:
    """Population counts the report draws (bounded: counters, never per-patient lists)."""

    rules: list[tuple[str, str]]  # (id, title) in rule order
    funnel_rules: frozenset[str] = frozenset()  # rules that exclude (not recommendations)
    total: int = 0
    input_bytes: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    first_exclusion: Counter[str] = field(default_factory=Counter)
    band_total: Counter[str] = field(default_factory=Counter)
    sex_total: Counter[str] = field(default_factory=Counter)
    band_present: Counter[tuple[str, str]] = field(default_factory=Counter)
    sex_present: Counter[tuple[str, str]] = field(default_factory=Counter)
    quality: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    errors_shown: list[dict[str, Any]] = field(default_factory=list)
    errors_total: int = 0
    duplicates: int = 0
    report_seconds: float = 0.0  # time spent drawing the report (fixed, not per patient)

    def add_row(self, row: dict[str, Any]) -> None:
        self.total += 1
        self.decisions[row["decision"]] += 1
        band, sex = row["age_band"], row["sex"]
        self.band_total[band] += 1
        self.sex_total[sex] += 1
        first = None
        for rid, _ in self.rules:
            st = row.get(rid)
            if st == "present":
                self.present[rid] += 1
                self.band_present[(rid, band)] += 1
                self.sex_present[(rid, sex)] += 1
                if first is None and rid in self.funnel_rules:
                    first = rid
            elif st == "unknown":
                self.unknown[rid] += 1
        if first is not None:
            self.first_exclusion[first] += 1

    def add_error(self, err: dict[str, Any]) -> None:
        self.errors_total += 1
        self.error_kinds[quality_key(str(err.get("reason", "")))] += 1
        if len(self.errors_shown) < 200:
            self.errors_shown.append(err)


def read_unit(path: Path) -> tuple[dict[str, Any], bytes]:
    """The unit's header and its assessment lines (as one block, copied out unchanged)."""
    data = path.read_bytes()
    head, _, rest = data.partition(b"\n")
    return orjson.loads(head), rest


def assemble(manifest: Manifest, work: WorkDir, ruleset: CompiledRuleset,
             units: list[Unit], on_patient: Callable[[], None] | None = None) -> Stats:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = work.out
    rule_ids = [r.id for r in ruleset.rules]
    columns = ["patient_id", "decision", *rule_ids, "age_band", "sex"]
    schema = pa.schema([(c, pa.string()) for c in columns])
    stats = Stats([(r.id, r.title) for r in ruleset.rules],
                  frozenset(r.id for r in ruleset.rules if r.severity != "recommendation"))
    tmp = {name: out / f".{name}.tmp" for name in OUTPUTS}
    seen: set[str] = set()
    with tmp["assessments.ndjson"].open("wb") as fa, \
            tmp["errors.ndjson"].open("wb") as fe, \
            tmp["summary.csv"].open("w", newline="", encoding="utf-8") as fc, \
            pq.ParquetWriter(str(tmp["summary.parquet"]), schema) as pw:
        writer = csv.writer(fc)
        writer.writerow(columns)
        for err in [*manifest.scan_errors, *manifest.partition_errors]:
            fe.write(orjson.dumps(err) + b"\n")
            stats.add_error(err)
        for unit in units:
            head, block = read_unit(work.unit_file(unit.id))
            stats.input_bytes += int(head.get("bytes", 0))
            for err in head["errors"]:
                fe.write(orjson.dumps(err) + b"\n")
                stats.add_error(err)
            stats.quality.update(head.get("quality", {}))
            rows = head["rows"]
            if block.count(b"\n") != len(rows):
                raise RuntimeError(f"work unit {unit.id} is inconsistent; run again without "
                                   "--resume")
            fa.write(block)
            batch: dict[str, list[Any]] = {c: [] for c in columns}
            for row in rows:
                writer.writerow([row.get(c) for c in columns])
                for c in columns:
                    batch[c].append(row.get(c))
                stats.add_row(row)
                pid = row["patient_id"]
                if unit.kind == "bundles" and pid in seen:
                    stats.duplicates += 1
                    dup = {"source": f"Patient/{pid}", "line": None, "resource": None,
                           "field": None, "reason": "patient appears in more than one work "
                           "unit (split across bundle files); screened once per unit"}
                    fe.write(orjson.dumps(dup) + b"\n")
                    stats.add_error(dup)
                if unit.kind == "bundles":
                    seen.add(pid)  # only bundles can split a patient across units
                if on_patient is not None:
                    on_patient()
            if rows:
                pw.write_table(pa.table(batch, schema=schema))
    from ..render.report import render_report

    started = time.perf_counter()
    tmp["report.html"].write_text(render_report(stats, ruleset, manifest.args),
                                  encoding="utf-8")
    stats.report_seconds = time.perf_counter() - started
    for name in OUTPUTS:
        os.replace(tmp[name], out / name)
    return stats
