"""Run a batch: plan, partition, screen work units (local processes or Spark), assemble.

Crash safety: every unit's result is written to a temporary file and renamed into
``OUT/.work/units``; the manifest records the plan. ``--resume`` re-plans, checks the inputs are
unchanged, skips units whose file exists and assembles the outputs again from all units — so a
run killed at any moment and resumed writes exactly what an uninterrupted run writes.
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.coverage import complete_kinds
from ..knowledge import get_ruleset
from ..knowledge.compiled import CompiledRuleset
from .assemble import Assembler, SharedAppender, Stats, check_units
from .partition import partition
from .plan import Manifest, Unit, WorkDir, atomic_write, make_plan
from .work import Job, engine_for, run_unit, unit_patients

KILL_ENV = "MSC_SCREEN_BATCH_KILL"  # test hook: "partition:N", "unit:N", "assemble:N" (units
# appended), "finish:1" (outputs complete, not yet renamed), "done:1" (renamed, .work kept) or
# "worker:N" (a local worker process kills itself before its Nth unit)


class ResumeError(Exception):
    """``--resume`` asked for, but the unfinished run was for other inputs or settings."""


class OptionError(ValueError):
    """An option the run cannot take (an unknown kind in ``complete``)."""


class WorkerDied(Exception):
    """A worker process ended abruptly (killed, out of memory): the run stops instead of
    waiting forever for its unit; completed units are kept for ``--resume``."""


@dataclass
class BatchOptions:
    inputs: list[str]
    as_of: dt.date
    out: Path
    workers: int = 1
    policy: str | None = None
    engine: str = "local"  # local | spark
    spark_master: str | None = None
    resume: bool = False
    progress: bool = False
    # kinds of data every patient's input holds completely ("all", a comma-separated list or a
    # sequence of ``coverage.yaml`` kind ids; ``engine.coverage.complete_kinds``): a Bulk
    # export, ``Patient/$everything``. Default: a kind is provided when the patient's input
    # holds at least one resource of it.
    complete: str | list[str] | tuple[str, ...] | None = None


@dataclass
class BatchResult:
    stats: Stats
    units: int
    resumed_units: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def errors(self) -> int:
        return self.stats.errors_total


class _Killer:
    """Kills this process with SIGKILL at a chosen point, to test crash safety for real."""

    def __init__(self) -> None:
        spec = os.environ.get(KILL_ENV, "")
        stage, _, n = spec.partition(":")
        self.stage = stage
        self.after = int(n) if n.isdigit() else -1
        self.count = 0

    def tick(self, stage: str) -> None:
        if stage != self.stage or self.after < 0:
            return
        self.count += 1
        if self.count >= self.after:
            os.kill(os.getpid(), signal.SIGKILL)


def declared_kinds(ruleset: CompiledRuleset,
                   names: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``--complete`` as the kind ids it declares, in the knowledge base's order (so
    ``conditions,medications`` and ``medications,conditions`` are the same run). ValueError
    names an unknown kind."""
    chosen = set(complete_kinds(ruleset, names))
    return tuple(k.id for k, _ in ruleset.coverage if k.id in chosen)


def run_batch(opts: BatchOptions, on_phase: Callable[[str, int, int], Any] | None = None,
              on_progress: Callable[[int], Any] | None = None) -> BatchResult:
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    ruleset = get_ruleset(opts.policy)
    engine_for(opts.policy)
    import pyarrow.parquet  # noqa: F401  (a fixed start-up cost, counted as such)

    lap("load")
    # The engine's objects live as long as the process: frozen, the collector's full passes
    # stop walking them (and forked workers stop writing to the pages they share).
    gc.freeze()
    try:
        with out_lock(opts.out):
            return _run(opts, ruleset, lap, timings, on_phase, on_progress)
    finally:
        gc.unfreeze()


LOCK_NAME = ".msc-screen-batch.lock"


class OutLocked(OptionError):
    """Another run holds ``--out``: two runs into one directory destroy each other's files."""


@contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``OUT/.msc-screen-batch.lock`` for the whole run (released by
    the kernel if the process dies, so a killed run never blocks its ``--resume``)."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutLocked(f"another msc-screen batch run is writing to {out} (it holds "
                            f"{out / LOCK_NAME}); wait for it to finish or choose another "
                            "--out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def _run(opts: BatchOptions, ruleset: CompiledRuleset, lap: Callable[[str], None],
         timings: dict[str, float], on_phase: Callable[[str, int, int], Any] | None,
         on_progress: Callable[[int], Any] | None) -> BatchResult:
    """Plan, screen and assemble, with the engine loaded (``run_batch``)."""
    inputs = [str(Path(p).absolute()) for p in opts.inputs]
    try:
        complete = declared_kinds(ruleset, opts.complete)
    except ValueError as exc:
        raise OptionError(f"--complete: {exc}") from None
    # the run's identity: --resume continues only a run with the same args
    args = {"inputs": inputs, "as_of": opts.as_of.isoformat(), "policy": opts.policy,
            "complete": list(complete), "ruleset": ruleset.ruleset_info,
            "policy_info": ruleset.policy_info}
    opts.out.mkdir(parents=True, exist_ok=True)
    work = WorkDir(opts.out)
    fresh = make_plan(inputs, args)
    manifest: Manifest | None = None
    if opts.resume:
        old = work.read_manifest()
        if old is not None:
            if (old.args != args or old.fingerprint != fresh.fingerprint
                    or old.bundle_units != fresh.bundle_units):
                raise ResumeError(f"cannot resume in {opts.out}: the unfinished run was for "
                                  "other inputs, as-of date, policy, --complete kinds or "
                                  "knowledge base; run again without --resume")
            manifest = old
    if manifest is None:
        work.reset()
        manifest = fresh
        work.write_manifest(manifest)
    work.units.mkdir(parents=True, exist_ok=True)
    killer = _Killer()
    if manifest.ndjson_files and not (manifest.partitioned and work.parts.is_dir()):
        if on_phase:
            on_phase("partition", 0, 0)
        partition(manifest, work, on_line=(lambda: killer.tick("partition"))
                  if killer.stage == "partition" else None)
    lap("plan")
    units = manifest.units()
    if opts.resume and not check_units(work, units):
        raise ResumeError(f"cannot resume in {opts.out}: input files changed since the "
                          "unfinished run; run again without --resume")
    pending = [u for u in units if not work.unit_file(u.id).exists()]
    job = Job(as_of=opts.as_of.isoformat(), policy=opts.policy, work=str(work.root),
              ndjson_files=tuple(manifest.ndjson_files),
              damaged_sources=tuple(manifest.damaged_sources), complete=complete)
    if on_phase:
        on_phase("screen", len(units), len(units) - len(pending))
    asm = Assembler(manifest, work, ruleset, units, tick=killer.tick)
    try:
        todo = {u.id for u in pending}
        for u in units:  # resumed: units already screened are appended first
            if u.id not in todo:
                asm.add(u.id)

        def done(unit_id: str, data: bytes | list[bytes] | None, patients: int) -> None:
            if on_progress:
                on_progress(patients)
            if isinstance(data, list) and asm.next_is(unit_id):  # screened here, in order
                asm.add_direct(unit_id, data)
                return
            if data is not None:
                atomic_write(work.unit_file(unit_id), data)
            killer.tick("unit")
            asm.add(unit_id)  # overlaps assembly with the workers still screening

        if pending:
            if opts.engine == "spark":
                from .spark import execute_spark

                execute_spark(pending, job, opts.spark_master, opts.workers, done)
            else:
                _execute_local(pending, job, opts.workers, asm, done)
        lap("screen")
        if on_phase:
            on_phase("assemble", len(units), len(units))
        stats = asm.finish(manifest.args)
    finally:
        asm.close()
    killer.tick("done")
    shutil.rmtree(work.root, ignore_errors=True)
    lap("assemble")
    timings["report"] = stats.report_seconds
    timings["assemble"] -= stats.report_seconds
    return BatchResult(stats, len(units), len(units) - len(pending), timings)


_appender: SharedAppender | None = None  # in a worker: how it commits its units


def _init_worker(policy: str | None, appender: SharedAppender) -> None:
    global _appender
    _appender = appender
    if sys.platform.startswith("linux"):
        try:  # die with the parent (a killed batch must not leave workers behind)
            import ctypes

            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    engine_for(policy)
    gc.freeze()  # as in ``run_batch`` (under fork, already frozen there: this adds the rest)


_worker_killer: _Killer | None = None  # in a worker: the "worker:N" test hook


def _pool_task(unit: dict[str, Any], job: Job) -> tuple[str, int]:
    global _worker_killer
    if _worker_killer is None:
        _worker_killer = _Killer()
    _worker_killer.tick("worker")
    data = run_unit(unit, job)
    assert _appender is not None
    _appender.publish(unit["id"], data)
    return unit["id"], unit_patients(data)


@contextmanager
def _pool(workers: int, policy: str | None, asm: Assembler) -> Iterator[ProcessPoolExecutor]:
    """A process pool that notices a worker dying (``BrokenProcessPool``): multiprocessing's
    ``Pool`` would replace the worker and wait forever for the unit it was screening."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = mp.get_context(method)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(policy, asm.share(ctx)))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _unit_dict(u: Unit) -> dict[str, Any]:
    return {"id": u.id, "kind": u.kind, "paths": u.paths, "partition": u.partition}


def _execute_local(pending: list[Unit], job: Job, workers: int, asm: Assembler,
                   done: Callable[[str, bytes | list[bytes] | None, int], None]) -> None:
    if workers <= 1 or len(pending) == 1:
        for u in pending:
            data = run_unit(_unit_dict(u), job)
            done(u.id, data, unit_patients(data))
        return
    with _pool(workers, job.policy, asm) as pool:
        futures = [pool.submit(_pool_task, _unit_dict(u), job) for u in pending]
        try:
            for fut in as_completed(futures):
                unit_id, patients = fut.result()
                done(unit_id, None, patients)
        except BrokenProcessPool:
            raise WorkerDied("a worker process ended abruptly (killed, or out of memory?); "
                             "the units it finished are kept: run again with --resume, "
                             "perhaps with fewer --workers") from None
