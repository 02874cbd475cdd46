"""``msc-screen batch``: screen a population (bundle directories, Bulk Data NDJSON exports)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..api import parse_as_of
from ..errors import InputError, KnowledgeError
from .common import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, fail


class Engine(StrEnum):
    local = "local"
    spark = "spark"


class _Bar:
    """Rich progress on a terminal (rate in patients/s, ETA); nothing on a pipe."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("units ·"),
            TextColumn("{task.fields[patients]:,} patients · {task.fields[rate]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.task: Any = None
        self.patients = 0

    def phase(self, name: str, total: int, done: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(name, total=total or None, patients=0,
                                               rate="")
        self.progress.update(self.task, description=name, total=total or None, completed=done)

    def advance(self, patients: int) -> None:
        self.patients += patients
        task = self.progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{self.patients / elapsed:,.0f}/s" if elapsed > 0 else ""
        self.progress.update(self.task, advance=1, patients=self.patients, rate=rate)

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()


def batch(
    inputs: list[Path] = typer.Argument(..., help="Directories or files: Bundles (.json, "
                                        ".json.gz) and Bulk Data NDJSON exports (.ndjson[.gz])."),
    as_of: str = typer.Option(..., "--as-of", help="Screening date (YYYY-MM-DD)."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (local) or "
                                "local[N] cores (Spark)."),
    policy: str | None = typer.Option(None, "--policy", help="Policy name or YAML file."),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local or spark."),
    spark_master: str | None = typer.Option(None, "--spark-master",
                                            help="Spark master URL (default local[N])."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in OUT."),
    complete: str | None = typer.Option(
        None, "--complete", help="Kinds of data every patient's input holds completely, so "
        "none of them means none recorded: 'all' (a Bulk export, Patient/$everything) or a "
        "comma-separated list (conditions,medications,...). Default: a kind is provided when "
        "the patient's input holds at least one resource of it. Part of the run: --resume "
        "needs the same value."),
) -> None:
    """Screen every patient in a population; write assessments, summary, errors and a report."""
    from ..batch import BatchOptions, OptionError, ResumeError, WorkerDied, run_batch

    try:
        day = parse_as_of(as_of)
    except ValueError as exc:
        fail(str(exc))
    console = Console(stderr=True)
    bar = _Bar(console) if console.is_terminal else None
    opts = BatchOptions(inputs=[str(p) for p in inputs], as_of=day, out=out, workers=workers,
                        policy=policy, engine=engine.value, spark_master=spark_master,
                        resume=resume, progress=bar is not None, complete=complete)
    try:
        result = run_batch(opts, on_phase=bar.phase if bar else None,
                           on_progress=bar.advance if bar else None)
    except (KnowledgeError, ResumeError, OptionError, InputError) as exc:
        if bar:
            bar.stop()
        fail(str(exc))
    except WorkerDied as exc:
        if bar:
            bar.stop()
        fail(str(exc), EXIT_INTERNAL)
    except OSError as exc:  # disk full, permissions, a vanished directory: named, resumable
        if bar:
            bar.stop()
        import errno

        name = errno.errorcode.get(exc.errno or 0, "OSError")
        where = f" ({exc.filename})" if exc.filename else ""
        fail(f"operating-system error {name}: {exc.strerror or exc}{where}; fix it (free disk "
             f"space, permissions) and continue with the same command plus --resume",
             EXIT_INTERNAL)
    if bar:
        bar.stop()
    s = result.stats
    summary = ", ".join(f"{n:,} {d}" for d, n in sorted(s.decisions.items()))
    Console(stderr=True, highlight=False, markup=False).print(
        f"{s.total:,} patients screened ({summary}); {s.errors_total:,} input error(s); "
        f"outputs in {out}")
    raise typer.Exit(EXIT_BAD_INPUT if s.errors_total else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
