"""``msc-screen synth``: write a synthetic population with planted, labelled rule triggers."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from ..api import parse_as_of
from ..errors import KnowledgeError
from .common import EXIT_OK, fail


class SynthFormat(StrEnum):
    bundles = "bundles"
    ndjson = "ndjson"


def synth(
    patients: int = typer.Option(..., "--patients", min=1, help="How many patients."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    fmt: SynthFormat = typer.Option(SynthFormat.bundles, "--format",
                                    help="bundles (one Bundle per patient) or ndjson (Bulk Data "
                                    "export: one file per resource type)."),
    seed: int = typer.Option(1, "--seed", help="Random seed (same seed, same files)."),
    prevalence: Path | None = typer.Option(None, "--prevalence", help="YAML mapping rule id -> "
                                           "share of applicable patients (see "
                                           "synth/prevalence.yaml)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Date the planted triggers are "
                                     "current at (default today)."),
    gz: bool = typer.Option(False, "--gzip", help="Write .gz files."),
) -> None:
    """Write synthetic FHIR R4 patients plus labels.csv (the triggers planted)."""
    from ..synth import SynthConfig, generate, load_prevalence

    try:
        day = parse_as_of(as_of)
        prev = load_prevalence(prevalence)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    cfg = SynthConfig(patients=patients, out=out, format=fmt.value, seed=seed, as_of=day,
                      gzip=gz)
    try:
        counts = generate(cfg, prev)
    except KnowledgeError as exc:
        fail(str(exc))
    planted = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    Console(stderr=True, highlight=False).print(
        f"wrote {patients:,} patients to {out} (planted: {planted or 'none'})")
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
