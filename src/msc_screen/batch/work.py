"""One work unit: read its patients, screen each with the engine, return the unit's bytes.

A unit file is one header line (counts for the report, errors, block lengths), the unit's rows
of ``summary.csv`` (exact bytes) and of ``summary.parquet`` (an Arrow IPC stream), then one
``Assessment.to_json()`` line per patient, in patient-id order. The same function runs in a
local worker process and inside a Spark executor, so both engines give identical bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any, cast

import orjson

from ..api import default_notes_extractor
from ..engine import NotesExtractor, evaluate
from ..engine.context import age_on
from ..engine.coverage import declare_complete, provided, short_of_data
from ..engine.safety_net import safety_net
from ..errors import InputError
from ..fhir.reader import ReadResult, read_bytes, slurp
from ..fhir.record import RecordBuilder
from ..knowledge import get_ruleset
from ..knowledge.compiled import CompiledRuleset
from ..model import Assessment, PatientRecord
from ..terminology.audit import Classifier, CodeTally, memoised
from ..terminology.valueset import KNOWN_KEYS
from .partition import MEDICATIONS
from .plan import WorkDir
from .stats import AGE_BANDS, UNKNOWN, RecordTally, Stats, coverage_gaps

COLUMNS_FIXED = ("patient_id", "decision")
COLUMNS_TAIL = ("age_band", "sex", "coverage_gaps")  # stats.TAIL columns

# A unit's summary rows are kept as two lists: the patient ids, and per patient its key
# ``(decision, *rule statuses in rule order, age band, sex, coverage gaps)`` — a row is
# ``(id, *key)``. Keys
# repeat (a unit of 128 patients has ~70 distinct ones), so the report counters and the CSV
# text are made once per distinct key, not once per patient.
Key = tuple[str | None, ...]

_ID = attrgetter("id")
NEEDS_INFORMATION = "needs-information"
_BAND_OF: dict[int, str] = {}  # age -> band (the first band that holds it)
for _lo, _hi, _name in AGE_BANDS:
    for _age in range(_lo, _hi + 1):
        _BAND_OF.setdefault(_age, _name)


@dataclass(frozen=True)
class Job:
    """What every unit of a run shares (picklable, small)."""

    as_of: str
    policy: str | None
    work: str
    ndjson_files: tuple[str, ...]
    damaged_sources: tuple[str, ...]
    # kinds of data declared complete for every patient (``--complete``; knowledge-base order)
    complete: tuple[str, ...] = ()


def engine_for(policy: str | None) -> tuple[CompiledRuleset, NotesExtractor | None]:
    """The ruleset and notes extractor every unit uses (both cached per process)."""
    return get_ruleset(policy), default_notes_extractor()


def code_classifier(ruleset: CompiledRuleset) -> Classifier:
    """What the engine makes of a record no value set claims (``SafetyNet.classify``), for
    the terminology audit, memoised once per process and ruleset."""
    hit: Classifier | None = ruleset.memo.get("terminology-audit")
    if hit is None:
        hit = ruleset.memo["terminology-audit"] = memoised(safety_net(ruleset).classify)
    return hit


class LackOfData:
    """Whether an assessment is needs-information only for lack of data: every finding that
    asks for information is a rule about the record's data (data-coverage) or an evidence-free
    unknown of a rule none of whose ``needs`` was provided (the engine's "not enough data",
    ``engine.coverage.short_of_data``). Counted for the report."""

    __slots__ = ("about_data", "ruleset")

    def __init__(self, ruleset: CompiledRuleset) -> None:
        self.ruleset = ruleset
        self.about_data = frozenset(
            r.id for r in ruleset.rules
            if r.present_if and all(c.kind == "coverage" for c in r.present_if))

    @classmethod
    def of(cls, ruleset: CompiledRuleset) -> LackOfData:
        hit: LackOfData | None = ruleset.memo.get("batch-lack-of-data")
        if hit is None:
            hit = ruleset.memo["batch-lack-of-data"] = cls(ruleset)
        return hit

    def only(self, a: Assessment) -> bool:
        if a.decision != NEEDS_INFORMATION:
            return False
        short: frozenset[str] | None = None
        for f in a.findings:
            if f.status == "absent" or f.severity != NEEDS_INFORMATION:
                continue
            if f.rule in self.about_data:
                continue
            if f.status != "unknown" or f.evidence:
                return False
            if short is None:
                short = short_of_data(self.ruleset, provided(a.coverage))
            if f.rule not in short:
                return False
        return True


def summary_columns(ruleset: CompiledRuleset) -> list[str]:
    return [*COLUMNS_FIXED, *(r.id for r in ruleset.rules), *COLUMNS_TAIL]


def new_stats(ruleset: CompiledRuleset) -> Stats:
    return Stats([(r.id, r.title) for r in ruleset.rules],
                 frozenset(r.id for r in ruleset.rules if r.severity != "recommendation"))


def age_band(rec: PatientRecord, as_of: dt.date) -> str:
    if rec.birth_date is None:
        return UNKNOWN
    return _BAND_OF.get(age_on(rec.birth_date.lo, as_of), UNKNOWN)  # the age the rules used


def csv_block(rows: list[tuple[str | None, ...]]) -> bytes:
    """The rows exactly as ``csv.writer`` writes them to ``summary.csv``."""
    return _csv_text(rows).encode("utf-8")


def _csv_text(rows: list[tuple[str | None, ...]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


# Ids ``csv.writer`` writes as they are (never quoted); any other id sends its unit through
# ``csv.writer`` itself.
_PLAIN_IDS = re.compile(r"[A-Za-z0-9._\-]*")
_CSV_TAILS: dict[Key, str] = {}  # memo: key -> "," + its fields as ``csv.writer`` ends a row


def csv_rows(ids: list[str], keys: list[Key]) -> bytes:
    """``csv_block`` of the rows ``(id, *key)``, byte for byte: with plain ids (the usual
    case), each row is its id and the cached text of its key (``csv.writer`` quotes each field
    on its own, so a row's text is its fields' texts joined by commas)."""
    if not all(ids) or _PLAIN_IDS.fullmatch("".join(ids)) is None:
        return csv_block([(pid, *key) for pid, key in zip(ids, keys, strict=True)])
    found = list(map(_CSV_TAILS.get, keys))
    if None in found:
        found = [_csv_tail(k) if t is None else t for t, k in zip(found, keys, strict=True)]
    parts = [""] * (2 * len(ids))
    parts[::2] = ids
    parts[1::2] = cast(list[str], found)
    return "".join(parts).encode("utf-8")


def _csv_tail(key: Key) -> str:
    tail = _CSV_TAILS.get(key)
    if tail is None:
        if len(_CSV_TAILS) >= 20_000:  # bounded (a unit has ~70 distinct keys)
            _CSV_TAILS.clear()
        tail = _CSV_TAILS[key] = "," + _csv_text([key])
    return tail


def arrow_block(ids: list[str], keys: list[Key], columns: list[str]) -> bytes:
    """The rows ``(id, *key)`` as an Arrow IPC stream (all columns strings; None stays
    null)."""
    import pyarrow as pa

    if not ids:
        return b""
    schema = pa.schema([(c, pa.string()) for c in columns])
    arrays = [pa.array(col, pa.string()) for col in (ids, *zip(*keys, strict=True))]
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as w:
        w.write_batch(pa.record_batch(arrays, schema=schema))
    return bytes(sink.getvalue())


def screen_records(records: list[PatientRecord], errors: list[InputError], job: Job,
                   input_bytes: int, extra: list[str] | None = None,
                   files: list[list[Any]] | None = None,
                   codes: CodeTally | None = None) -> list[bytes]:
    """Screen a unit's records and lay out its file (see ``unit_bytes``): every per-patient
    step — summary row, CSV text, Arrow batch, report counters — is done here, in the worker.
    Per patient the engine runs, the row's key is made and the records are tallied; the
    counters, the CSV and the Arrow columns are made once per unit, from whole lists.
    ``codes``: the unit's terminology-audit tally, holding the records the reader's filter
    passed over (its ``on_skip`` hook); the records screened are added here."""
    ruleset, notes = engine_for(job.policy)
    as_of = dt.date.fromisoformat(job.as_of)
    rule_ids = [r.id for r in ruleset.rules]
    ids: list[str] = []
    keys: list[Key] = []
    lines: list[bytes] = []
    warnings: list[str] = []
    tally = RecordTally(KNOWN_KEYS)
    if codes is None:
        codes = CodeTally()
    lack = LackOfData.of(ruleset)
    data_only: dict[str, int] = {}
    if job.complete:
        declare_complete(records, job.complete)
    for rec in sorted(records, key=_ID):
        if extra:
            rec.warnings.extend(extra)
        a = evaluate(rec, ruleset, as_of, notes)
        lines.append(a.to_json())
        lines.append(b"\n")
        status = {f.rule: f.status for f in a.findings}
        ids.append(a.patient_id)
        gaps = coverage_gaps(a.coverage)
        keys.append((a.decision, *map(status.get, rule_ids), age_band(rec, as_of),
                     rec.gender or UNKNOWN, gaps))
        if a.decision == NEEDS_INFORMATION and lack.only(a):
            data_only[gaps] = data_only.get(gaps, 0) + 1
        if a.warnings:
            warnings.extend(a.warnings)
        tally.add(rec)
        codes.add_record(rec)
    stats = new_stats(ruleset)
    stats.add_quality(warnings)
    tally.into(stats)
    stats.add_rows(Counter(keys))
    stats.data_only.update(data_only)
    stats.codes.add(codes.rows(code_classifier(ruleset)))
    return unit_bytes(ids, keys, lines, stats, errors, input_bytes, summary_columns(ruleset),
                      files)


def unit_bytes(ids: list[str], keys: list[Key], lines: list[bytes], stats: Stats,
               errors: list[InputError], input_bytes: int, columns: list[str],
               files: list[list[Any]] | None = None) -> list[bytes]:
    """A unit file as chunks (written with one ``writev``, never joined into one copy): a JSON
    header line, then the CSV block, the Arrow block and the assessment lines (``lines``
    alternates each JSON document and its newline), whose lengths the header gives so the
    parent copies each out whole. The summary rows are ``(id, *key)`` for each of ``ids`` and
    ``keys``. ``at`` stays null here; the parent sets it to the offset in
    the assessments output when it writes a unit's lines there directly and leaves them out of
    the unit file (see ``Assembler.add_direct``). ``files`` is [path, size, mtime_ns] of each
    Bundle file read, checked on ``--resume``."""
    csv_b = csv_rows(ids, keys)
    arrow_b = arrow_block(ids, keys, columns)
    header = {"patients": len(ids), "bytes": input_bytes, "csv": len(csv_b),
              "arrow": len(arrow_b), "assessments": sum(map(len, lines)), "at": None,
              "errors": [e.to_dict() for e in errors], "stats": stats.partial(),
              "files": files}
    return [orjson.dumps(header, option=orjson.OPT_APPEND_NEWLINE), csv_b, arrow_b, *lines]


def unit_patients(data: bytes | list[bytes]) -> int:
    head = data[0] if isinstance(data, list) else data[:data.index(b"\n")]
    return int(orjson.loads(head)["patients"])


def file_stamp(path: str) -> list[Any]:
    """[path, size, mtime_ns] of a Bundle file (None, None when it cannot be stat-ed)."""
    try:
        st = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_size, st.st_mtime_ns]


def _read_bundle(path: str) -> tuple[ReadResult, list[Any]]:
    """``fhir.reader.read_file`` for a Bundle file, with one open and no ``Path`` objects; also
    the file's stamp (as ``file_stamp``, from the open file)."""
    try:
        data, st = slurp(path)
    except InputError as exc:
        return ReadResult(path, error=exc), file_stamp(path)
    except OSError as exc:
        return (ReadResult(path, error=InputError(path, f"cannot read ({exc.strerror})")),
                file_stamp(path))
    return read_bytes(data, path, ndjson=False), [path, st.st_size, st.st_mtime_ns]


def run_bundles(paths: list[str], job: Job) -> list[bytes]:
    codes = CodeTally()
    builder = RecordBuilder.for_ruleset(engine_for(job.policy)[0], on_skip=codes.skipped)
    size = 0
    files: list[list[Any]] = []
    for p in paths:
        result, stamp = _read_bundle(p)
        files.append(stamp)
        size += stamp[1] or 0
        builder.add(result)
    records = builder.finish()
    return screen_records(records, builder.errors, job, size, files=files, codes=codes)


def run_partition(index: int, job: Job) -> list[bytes]:
    """Screen the patients of one spill: per patient, one ReadResult per source file, so a bad
    resource rejects only that file's part of that patient's record (and says so)."""
    work = WorkDir(Path(job.work).parent)
    meds = _medications(work.parts / MEDICATIONS)
    data = work.part_file(index).read_bytes()
    by_patient: dict[str, list[tuple[int, int, bytes]]] = defaultdict(list)
    for line in data.splitlines():
        tag, raw = line.split(b"\t", 1)
        src, lineno, pid = orjson.loads(tag)
        by_patient[pid].append((src, lineno, raw))
    records: list[PatientRecord] = []
    errors: list[InputError] = []
    codes = CodeTally()
    for pid in sorted(by_patient):
        per_source: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for src, lineno, raw in sorted(by_patient[pid], key=lambda t: (t[0], t[1])):
            per_source[src].append((lineno, raw))
            if b'"medicationReference"' in raw:
                ref = (orjson.loads(raw).get("medicationReference") or {}).get("reference")
                if isinstance(ref, str) and ref in meds:
                    per_source[src].append(meds[ref])
        builder = RecordBuilder.for_ruleset(engine_for(job.policy)[0], on_skip=codes.skipped)
        for src in sorted(per_source):
            builder.add(_slice(job.ndjson_files[src], per_source[src]))
        records.extend(builder.finish())
        errors.extend(builder.errors)
    extra = [f"input {s} had unreadable lines (see errors.ndjson); records may lack its "
             "resources" for s in job.damaged_sources]
    return screen_records(records, errors, job, len(data), extra, codes=codes)


_meds: dict[str, dict[str, tuple[int, bytes]]] = {}  # per process: each unit needs them all


def _medications(path: Path) -> dict[str, tuple[int, bytes]]:
    """``Medication/<id>`` → (line, resource) from the shared medications spill, read once per
    process (a worker screens many partitions of one run)."""
    st = path.stat()
    key = f"{path}:{st.st_size}:{st.st_mtime_ns}"
    hit = _meds.get(key)
    if hit is None:
        hit = {}
        for line in path.read_bytes().splitlines():
            tag, raw = line.split(b"\t", 1)
            _, lineno, mid = orjson.loads(tag)
            if isinstance(mid, str):
                hit.setdefault(f"Medication/{mid}", (lineno, raw))
        _meds.clear()  # one run at a time
        _meds[key] = hit
    return hit


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


def run_unit(unit: dict[str, Any], job: Job) -> list[bytes]:
    if unit["kind"] == "bundles":
        return run_bundles(unit["paths"], job)
    return run_partition(int(unit["partition"]), job)
