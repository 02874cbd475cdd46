"""One work unit: read its patients, screen each with the engine, return the unit's bytes.

A unit file is one header line (summary rows, errors, data-quality counts) followed by one
``Assessment.to_json()`` line per patient, in patient-id order. The same function runs in a
local worker process and inside a Spark executor, so both engines give identical bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..api import default_notes_extractor
from ..engine import NotesExtractor, evaluate
from ..errors import InputError
from ..fhir.reader import ReadResult, read_bytes, read_file
from ..fhir.record import RecordBuilder
from ..knowledge import get_ruleset
from ..knowledge.compiled import CompiledRuleset
from ..model import Assessment, PatientRecord
from .partition import MEDICATIONS

AGE_BANDS = ((0, 17, "0-17"), (18, 34, "18-34"), (35, 49, "35-49"), (50, 64, "50-64"),
             (65, 79, "65-79"), (80, 200, "80+"))
UNKNOWN = "unknown"
_REF = re.compile(r"\b([A-Z][A-Za-z]+)/[^\s;,:'\"]+")
_QUOTED = re.compile(r"'[^']*'")
_DATE = re.compile(r"\b\d{4}-\d{2}(?:-\d{2})?(?:T[0-9:.+\-Z]*)?")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


@dataclass(frozen=True)
class Job:
    """What every unit of a run shares (picklable, small)."""

    as_of: str
    policy: str | None
    work: str
    ndjson_files: tuple[str, ...]
    damaged_sources: tuple[str, ...]


_cache: dict[str | None, tuple[CompiledRuleset, NotesExtractor | None]] = {}


def engine_for(policy: str | None) -> tuple[CompiledRuleset, NotesExtractor | None]:
    hit = _cache.get(policy)
    if hit is None:
        hit = _cache[policy] = (get_ruleset(policy), default_notes_extractor())
    return hit


def age_band(rec: PatientRecord, as_of: dt.date) -> str:
    if rec.birth_date is None:
        return UNKNOWN
    b = rec.birth_date.lo
    age = as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day))
    for lo, hi, name in AGE_BANDS:
        if lo <= age <= hi:
            return name
    return UNKNOWN


def quality_key(warning: str) -> str:
    """A warning with identifiers, dates and numbers removed, so the report can count kinds
    of issue."""
    text = _QUOTED.sub("'…'", _REF.sub(r"\1/…", warning))
    return _NUMBER.sub("N", _DATE.sub("<date>", text))


def summary_row(a: Assessment, rec: PatientRecord, as_of: dt.date) -> dict[str, Any]:
    row: dict[str, Any] = {"patient_id": a.patient_id, "decision": a.decision}
    for f in a.findings:
        row[f.rule] = f.status
    row["age_band"] = age_band(rec, as_of)
    row["sex"] = rec.gender or UNKNOWN
    return row


def screen_records(records: list[PatientRecord], errors: list[InputError], job: Job,
                   input_bytes: int, extra: list[str] | None = None) -> bytes:
    ruleset, notes = engine_for(job.policy)
    as_of = dt.date.fromisoformat(job.as_of)
    rows: list[dict[str, Any]] = []
    lines: list[bytes] = []
    quality: Counter[str] = Counter()
    for rec in sorted(records, key=lambda r: r.id):
        if extra:
            rec.warnings.extend(extra)
        a = evaluate(rec, ruleset, as_of, notes)
        lines.append(a.to_json())
        rows.append(summary_row(a, rec, as_of))
        quality.update(quality_key(w) for w in a.warnings)
    header = {"patients": len(rows), "bytes": input_bytes, "rows": rows,
              "errors": [e.to_dict() for e in errors], "quality": dict(sorted(quality.items()))}
    return b"\n".join([orjson.dumps(header), *lines]) + b"\n"


def run_bundles(paths: list[str], job: Job) -> bytes:
    builder = RecordBuilder.for_ruleset(engine_for(job.policy)[0])
    size = 0
    for p in paths:
        path = Path(p)
        with contextlib.suppress(OSError):
            size += path.stat().st_size
        builder.add(read_file(path))
    records = builder.finish()
    return screen_records(records, builder.errors, job, size)


def run_partition(index: int, job: Job) -> bytes:
    """Screen the patients of one spill: per patient, one ReadResult per source file, so a bad
    resource rejects only that file's part of that patient's record (and says so)."""
    work = Path(job.work)
    meds: dict[str, tuple[int, bytes]] = {}
    for line in (work / "parts" / MEDICATIONS).read_bytes().splitlines():
        tag, raw = line.split(b"\t", 1)
        _, lineno = orjson.loads(tag)
        mid = orjson.loads(raw).get("id")
        if isinstance(mid, str):
            meds.setdefault(f"Medication/{mid}", (lineno, raw))
    data = (work / "parts" / f"{index:06d}.spill").read_bytes()
    by_patient: dict[str, list[tuple[int, int, bytes]]] = defaultdict(list)
    for line in data.splitlines():
        tag, raw = line.split(b"\t", 1)
        src, lineno, pid = orjson.loads(tag)
        by_patient[pid].append((src, lineno, raw))
    records: list[PatientRecord] = []
    errors: list[InputError] = []
    for pid in sorted(by_patient):
        per_source: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for src, lineno, raw in sorted(by_patient[pid], key=lambda t: (t[0], t[1])):
            per_source[src].append((lineno, raw))
            if b'"medicationReference"' in raw:
                ref = (orjson.loads(raw).get("medicationReference") or {}).get("reference")
                if isinstance(ref, str) and ref in meds:
                    per_source[src].append(meds[ref])
        builder = RecordBuilder.for_ruleset(engine_for(job.policy)[0])
        for src in sorted(per_source):
            builder.add(_slice(job.ndjson_files[src], per_source[src]))
        records.extend(builder.finish())
        errors.extend(builder.errors)
    extra = [f"input {s} had unreadable lines (see errors.ndjson); records may lack its "
             "resources" for s in job.damaged_sources]
    return screen_records(records, errors, job, len(data), extra)


def _slice(source: str, lines: list[tuple[int, bytes]]) -> ReadResult:
    """One patient's lines of one NDJSON file, read by the project's reader, with line numbers
    mapped back to the original file (errors then name the real line)."""
    result = read_bytes(b"\n".join(raw for _, raw in lines), source, ndjson=True)
    orig = [n for n, _ in lines]

    def real(n: int | None) -> int | None:
        return orig[n - 1] if n is not None and 0 < n <= len(orig) else n

    result.resources = [(r, url, real(n)) for r, url, n in result.resources]
    if result.error is not None:
        result.error.line = real(result.error.line)
    return result


def run_unit(unit: dict[str, Any], job: Job) -> bytes:
    if unit["kind"] == "bundles":
        return run_bundles(unit["paths"], job)
    return run_partition(int(unit["partition"]), job)
