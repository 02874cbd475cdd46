"""Assemble the final outputs from completed unit files, in plan order, as units complete.

Units are appended in plan order and each unit's patients are already in id order, so output
order is fixed by the inputs, never by which worker finished first. The parent does almost no
per-patient work: a unit file carries its CSV rows as bytes, its parquet rows as an Arrow
stream and its report counters, and its assessment lines are copied file-to-file in the kernel.
So assembly runs while workers still screen instead of as a serial tail. Outputs are written
to temporary names and renamed at the end: a kill leaves no half-written output, and
``--resume`` assembles again from the unit files.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ..knowledge.compiled import CompiledRuleset
from .partition import bucket
from .plan import Manifest, Unit, WorkDir, atomic_write, write_chunks
from .stats import AGE_BANDS, UNKNOWN, Stats
from .work import csv_block, new_stats, summary_columns

__all__ = ["BANDS", "OUTPUTS", "Assembler", "DuplicateCheck", "Stats", "check_units",
           "copy_range"]

OUTPUTS = ("assessments.ndjson", "summary.parquet", "summary.csv", "errors.ndjson",
           "report.html", "terminology-audit.csv")
BANDS = [b[2] for b in AGE_BANDS] + [UNKNOWN]
ROW_GROUP = 8_192  # parquet rows per row group: fixed by row count, not by unit boundaries
IDS_PER_BUCKET = 250_000  # patient ids held in memory at once by the duplicate check
MAX_BUCKETS = 256
DUPLICATE = ("patient appears in more than one input (Bundle files in different work units, "
             "or Bundles and an NDJSON export); screened once per unit, so it has {n} "
             "assessments")

_copy_file_range = hasattr(os, "copy_file_range")


def copy_range(src: int, dst: int, offset: int, count: int) -> None:
    """Append ``count`` bytes of ``src`` from ``offset`` to ``dst`` without passing them
    through Python objects where the kernel can (``copy_file_range``); else pread/write."""
    global _copy_file_range
    while count > 0:
        n = 0
        if _copy_file_range:
            try:
                n = os.copy_file_range(src, dst, count, offset)
            except OSError:  # another file system, an old kernel: copy through memory
                _copy_file_range = False
        if not _copy_file_range:
            data = memoryview(os.pread(src, min(count, 1 << 24), offset))
            n = len(data)
            while data:
                data = data[os.write(dst, data):]
        if n <= 0:
            raise RuntimeError("a work unit file is shorter than its header says; run again "
                               "without --resume")
        offset += n
        count -= n


class DuplicateCheck:
    """Patients screened in more than one work unit (a patient in two Bundle units, or in
    Bundles and an NDJSON export). Each unit's ids go to one of B spill files by a hash of the
    id; at the end each spill is counted alone, so memory is one spill (about
    ``IDS_PER_BUCKET`` ids), not every id of the run. Within a unit ids are unique (records
    are grouped by patient), so an id counted twice is in two units."""

    def __init__(self, root: Path, expected_patients: int) -> None:
        self.buckets = max(1, min(MAX_BUCKETS, -(-expected_patients // IDS_PER_BUCKET)))
        root.mkdir(parents=True, exist_ok=True)
        self.paths = [root / f"{i:03d}.ids" for i in range(self.buckets)]
        self.files = [p.open("wb") for p in self.paths]

    def add(self, ids: list[str]) -> None:
        if self.buckets == 1:
            self.files[0].write(orjson.dumps(ids) + b"\n")
            return
        parts: dict[int, list[str]] = {}
        for pid in ids:
            parts.setdefault(bucket(pid, self.buckets), []).append(pid)
        for b, part in parts.items():
            self.files[b].write(orjson.dumps(part) + b"\n")

    def close(self) -> None:
        for f in self.files:
            f.close()

    def duplicates(self) -> Iterator[tuple[str, int]]:
        """(patient id, times screened) for each id seen in more than one unit: bucket by
        bucket, ids sorted within a bucket (deterministic for the same inputs)."""
        self.close()
        for path in self.paths:
            counts: Counter[str] = Counter()
            with path.open("rb") as f:
                for line in f:
                    counts.update(orjson.loads(line))
            yield from sorted((pid, n) for pid, n in counts.items() if n > 1)
            del counts


def temp_outputs(out: Path) -> dict[str, Path]:
    return {name: out / f".{name}.tmp" for name in OUTPUTS}


def check_units(work: WorkDir, units: list[Unit]) -> bool:
    """Before ``--resume``: False if a Bundle file read by a completed unit has changed since
    (size or mtime: the plan does not stat Bundle files, their workers record them). Also, a
    unit whose assessment lines were written straight into the temporary output (``at`` set)
    is kept only if every unit before it is complete and the lines are still where the plan
    order puts them (the file may be gone: renamed at the end of a run killed before it
    removed ``.work``); otherwise its unit file is removed, so it is screened again."""
    from .work import file_stamp

    size = temp_outputs(work.out)["assessments.ndjson"]
    try:
        have = size.stat().st_size
    except OSError:
        have = -1
    pos: int | None = 0
    for u in units:
        path = work.unit_file(u.id)
        try:
            with path.open("rb") as f:
                head = orjson.loads(f.readline())
        except (OSError, orjson.JSONDecodeError):
            path.unlink(missing_ok=True)
            pos = None  # later direct units cannot be placed
            continue
        for stamp in head.get("files") or ():
            if file_stamp(stamp[0]) != stamp:
                return False
        at = head.get("at")
        if at is not None and (pos is None or at != pos or have < at + head["assessments"]):
            path.unlink()
            pos = None
            continue
        if pos is not None:
            pos += head["assessments"]
    return True


class SharedAppender:
    """Local worker processes append assessment lines to the temporary output themselves, in
    plan order, under one lock: the worker that finishes the next unit writes its lines there
    directly (its unit file then keeps only header, CSV and Arrow, as ``Assembler.add_direct``)
    and copies on any later units already finished out of order (their unit files are whole).
    So the parent copies nothing while workers screen, and most lines are written once. The
    parent's ``Assembler`` takes a unit's counters and rows only once it is appended."""

    def __init__(self, ctx: Any, work: WorkDir, order: list[str], index: int,
                 offset: int) -> None:
        self.lock = ctx.Lock()
        self.index = ctx.RawValue("q", index)  # units appended (a prefix of ``order``)
        self.offset = ctx.RawValue("q", offset)  # end of the lines appended
        self.order = order
        self.work = work
        self.path = temp_outputs(work.out)["assessments.ndjson"]
        self.fd = -1

    def appended(self) -> int:
        """Units appended so far, read without the lock: a stale (smaller) count only delays
        the parent's merge, and a worker that died holding the lock must not hang the parent.
        A unit's files are complete before the count that covers it is stored."""
        return int(self.index.value)

    def publish(self, unit_id: str, chunks: list[bytes]) -> None:
        """In a worker: commit a screened unit (its file, and its lines if it is next)."""
        with self.lock:
            if self.index.value < len(self.order) and self.order[self.index.value] == unit_id:
                if self.fd < 0:
                    self.fd = os.open(self.path, os.O_WRONLY)
                at = self.offset.value
                os.lseek(self.fd, at, os.SEEK_SET)
                n = write_chunks(self.fd, chunks[3:])  # lines first, then the unit file
                head = orjson.loads(chunks[0])
                head["at"] = at
                atomic_write(self.work.unit_file(unit_id),
                             [orjson.dumps(head, option=orjson.OPT_APPEND_NEWLINE), chunks[1],
                              chunks[2]])
                self.offset.value = at + n
                self.index.value += 1
                self._catch_up()
            else:
                atomic_write(self.work.unit_file(unit_id), chunks)

    def _catch_up(self) -> None:
        """Copy on the units finished out of order that now come next (whole unit files)."""
        while self.index.value < len(self.order):
            try:
                f = self.work.unit_file(self.order[self.index.value]).open("rb")
            except FileNotFoundError:
                return
            with f:
                first = f.readline()
                head = orjson.loads(first)
                n = head["assessments"]
                os.lseek(self.fd, self.offset.value, os.SEEK_SET)
                copy_range(f.fileno(), self.fd,
                           len(first) + head["csv"] + head["arrow"], n)
            self.offset.value += n
            self.index.value += 1


class Assembler:
    """Appends completed units to the outputs in plan order; ``add`` may be called in any
    order (as workers finish), ``finish`` writes the report and renames the outputs."""

    def __init__(self, manifest: Manifest, work: WorkDir, ruleset: CompiledRuleset,
                 units: list[Unit], tick: Callable[[str], None] | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.work = work
        self.ruleset = ruleset
        self.tick = tick or (lambda stage: None)
        self.columns = summary_columns(ruleset)
        self.schema = pa.schema([(c, pa.string()) for c in self.columns])
        self.stats = new_stats(ruleset)
        self.order = [u.id for u in units]
        self.done = 0  # units appended so far (a prefix of ``order``)
        self.ready: set[str] = set()
        self.pending: list[Any] = []  # Arrow tables not yet written as a row group
        self.pending_rows = 0
        out = work.out
        self.tmp = temp_outputs(out)
        # Not truncated: on --resume it may hold lines written directly (``add_direct``) by
        # the killed run, which ``check_units`` has checked; cut to size in ``finish``.
        self.fa = os.open(self.tmp["assessments.ndjson"], os.O_RDWR | os.O_CREAT, 0o644)
        self.pos = 0  # end of the assessment lines appended so far
        self.shared: SharedAppender | None = None  # set while local workers append lines
        self.fe = self.tmp["errors.ndjson"].open("wb")
        self.fc = self.tmp["summary.csv"].open("wb")
        self.pw = pq.ParquetWriter(str(self.tmp["summary.parquet"]), self.schema)
        expected = sum(len(u) for u in manifest.bundle_units) + sum(manifest.partition_patients)
        self.dups = DuplicateCheck(work.root / "ids", expected)
        self.fc.write(csv_block([tuple(self.columns)]))
        for err in [*manifest.scan_errors, *manifest.partition_errors]:
            self._error(err)

    def _error(self, err: dict[str, Any]) -> None:
        self.fe.write(orjson.dumps(err) + b"\n")
        self.stats.add_error(err)

    def add(self, unit_id: str) -> None:
        """Unit ``unit_id`` is complete on disk; append every unit now ready in plan order."""
        self.ready.add(unit_id)
        self._drain()

    def share(self, ctx: Any) -> SharedAppender:
        """From now on workers append the lines (``SharedAppender``); this takes the rest."""
        self.shared = SharedAppender(ctx, self.work, self.order, self.done, self.pos)
        return self.shared

    def _drain(self) -> None:
        limit = len(self.order) if self.shared is None else self.shared.appended()
        while self.done < limit and self.order[self.done] in self.ready:
            uid = self.order[self.done]
            self.ready.discard(uid)
            self._append(uid)
            self.done += 1
            self.tick("assemble")

    def next_is(self, unit_id: str) -> bool:
        return self.done < len(self.order) and self.order[self.done] == unit_id

    def add_direct(self, unit_id: str, chunks: list[bytes]) -> None:
        """The next unit in plan order, still in memory (screened in this process): its
        assessment lines go straight to the output, and its unit file keeps only the header
        (with their offset), CSV and Arrow blocks — the lines are written once, not twice.
        Lines first, unit file second: a kill in between leaves no unit file, so the unit is
        screened again and its lines rewritten at the same offset."""
        head = orjson.loads(chunks[0])
        os.lseek(self.fa, self.pos, os.SEEK_SET)
        written = write_chunks(self.fa, chunks[3:])
        if written != head["assessments"]:
            raise RuntimeError(f"work unit {unit_id}: assessment block size mismatch")
        head["at"] = self.pos
        first = orjson.dumps(head, option=orjson.OPT_APPEND_NEWLINE)
        atomic_write(self.work.unit_file(unit_id), [first, chunks[1], chunks[2]])
        self.tick("unit")
        self._absorb(head, chunks[1] + chunks[2])
        self.pos += written
        self.done += 1
        self.tick("assemble")
        self._drain()  # units screened before a --resume may follow

    def _append(self, unit_id: str) -> None:
        with self.work.unit_file(unit_id).open("rb") as f:
            first = f.readline()
            head = orjson.loads(first)
            n_csv, n_arrow, n_assess = head["csv"], head["arrow"], head["assessments"]
            blocks = f.read(n_csv + n_arrow)
            offset = len(first) + len(blocks)
            inline = head["at"] is None
            if (len(blocks) != n_csv + n_arrow or os.fstat(f.fileno()).st_size
                    != offset + (n_assess if inline else 0)):
                raise RuntimeError(f"work unit {unit_id} is inconsistent; run again without "
                                   "--resume")
            if inline:
                if self.shared is None:  # else a worker copied it (``SharedAppender``)
                    os.lseek(self.fa, self.pos, os.SEEK_SET)
                    copy_range(f.fileno(), self.fa, offset, n_assess)
            elif head["at"] != self.pos:  # check_units let it through: a bug
                raise RuntimeError(f"work unit {unit_id} is out of place; run again without "
                                   "--resume")
        self._absorb(head, blocks)
        self.pos += n_assess

    def _absorb(self, head: dict[str, Any], blocks: bytes) -> None:
        """A unit's counters, errors, CSV rows and parquet rows into the outputs."""
        import pyarrow as pa

        n_csv = head["csv"]
        stats = self.stats
        stats.input_bytes += int(head["bytes"])
        for err in head["errors"]:
            self._error(err)
        stats.merge(head["stats"])
        if not head["patients"]:
            return
        self.fc.write(memoryview(blocks)[:n_csv])
        # the Arrow block alone (the table refers to it until written; the CSV part is freed)
        table = pa.ipc.open_stream(pa.py_buffer(blocks[n_csv:])).read_all()
        self.dups.add(table.column(0).to_pylist())
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= ROW_GROUP:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        import pyarrow as pa

        if not self.pending:
            return
        table = pa.concat_tables(self.pending)  # chunks as the units gave them: no copy
        full = table.num_rows if final else table.num_rows // ROW_GROUP * ROW_GROUP
        if full:
            self.pw.write_table(table.slice(0, full), row_group_size=ROW_GROUP)
        rest = table.slice(full)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows

    def finish(self, args: dict[str, Any]) -> Stats:
        import time

        from ..render.report import render_report
        from ..terminology.audit import render_csv

        self._drain()  # the last units appended by workers
        if self.done != len(self.order):
            raise RuntimeError(f"{len(self.order) - self.done} work unit(s) missing; run again "
                               "with --resume")
        self._flush(final=True)
        os.ftruncate(self.fa, self.pos)
        stats = self.stats
        for pid, n in self.dups.duplicates():
            stats.duplicates += n - 1
            self._error({"source": f"Patient/{pid}", "line": None, "resource": None,
                         "field": None, "reason": DUPLICATE.format(n=n)})
        self.close()
        self.tmp["terminology-audit.csv"].write_bytes(render_csv(stats.codes.rows()))
        started = time.perf_counter()
        self.tmp["report.html"].write_text(render_report(stats, self.ruleset, args),
                                           encoding="utf-8")
        stats.report_seconds = time.perf_counter() - started
        self.tick("finish")
        for name in OUTPUTS:
            final = self.work.out / name
            # Remove an older output first: ext4 flushes a file renamed over another to disk
            # before the rename returns (auto_da_alloc), seconds for a large assessments file.
            final.unlink(missing_ok=True)
            os.replace(self.tmp[name], final)
        return stats

    def close(self) -> None:
        """Close the outputs (idempotent); called on success and on failure."""
        if self.fa >= 0:
            os.close(self.fa)
            self.fa = -1
        self.fe.close()
        self.fc.close()
        self.pw.close()
        self.dups.close()
