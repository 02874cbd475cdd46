"""``msc-screen screen``: FHIR files in, one assessment per patient out."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import orjson
import typer
from rich.console import Console

from ..api import default_notes_extractor, parse_as_of
from ..engine import evaluate
from ..engine.coverage import complete_kinds, declare_complete
from ..errors import InputError, KnowledgeError
from ..fhir.reader import read_paths
from ..fhir.record import RecordBuilder
from ..knowledge import get_ruleset
from ..model import NoteItem
from .common import EXIT_BAD_INPUT, EXIT_OK, fail, print_error


class Format(StrEnum):
    text = "text"
    json = "json"
    fhir = "fhir"


def screen(
    paths: list[Path] = typer.Argument(..., help="FHIR files or directories (Bundle, resource, "
                                       "NDJSON, .gz)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Screening date (YYYY-MM-DD); "
                                     "default today."),
    policy: str | None = typer.Option(None, "--policy", help="Policy name or YAML file."),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text, json or fhir."),
    note: list[Path] = typer.Option([], "--note", help="Plain-text clinical note(s) to read "
                                    "with the record (single-patient input)."),
    show_absent: bool = typer.Option(False, "--all", help="Text: also list absent findings."),
    complete: str | None = typer.Option(
        None, "--complete", help="Kinds of data the input holds completely, so none of them "
        "means none recorded: 'all' (a Bulk export, Patient/$everything, the clinic's own "
        "record) or a comma-separated list (conditions,medications,...). Default: a kind is "
        "provided when the input holds at least one resource of it."),
) -> None:
    """Screen patients for contraindications to IV MSC therapy."""
    try:
        day = parse_as_of(as_of)
    except ValueError as exc:
        fail(str(exc))
    try:
        ruleset = get_ruleset(policy)
    except KnowledgeError as exc:
        fail(str(exc))
    try:
        kinds = complete_kinds(ruleset, complete)
    except ValueError as exc:
        fail(f"--complete: {exc}")
    builder = RecordBuilder.for_ruleset(ruleset)
    for result in read_paths(paths):
        builder.add(result)
    records = builder.finish()
    errors: list[InputError] = list(builder.errors)
    if note:
        if len(records) != 1:
            errors.append(InputError(str(note[0]), f"--note needs exactly one patient in the "
                                     f"input, found {len(records)}"))
        else:
            for n in note:
                try:
                    text = n.read_text(encoding="utf-8", errors="replace")
                except OSError as exc:
                    errors.append(InputError(str(n), f"cannot read ({exc.strerror})"))
                    continue
                records[0].notes.append(NoteItem(reference=f"note:{n.name}", text=text,
                                                 date=None))
    declare_complete(records, kinds)
    extractor = default_notes_extractor()
    assessments = [evaluate(r, ruleset, day, extractor) for r in records]
    out = sys.stdout.buffer
    if fmt is Format.json:
        for a in assessments:
            out.write(a.to_json() + b"\n")
    elif fmt is Format.fhir:
        from ..render.fhir import detected_issue_bundle

        out.write(orjson.dumps(detected_issue_bundle(assessments), option=orjson.OPT_INDENT_2))
        out.write(b"\n")
    else:
        from ..render.text import render_assessment

        console = Console()
        for a in assessments:
            render_assessment(a, console, show_absent=show_absent)
    out.flush()
    for e in errors:
        print_error(e.describe())
    if not records and not errors:
        print_error("no patients found in the input")
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_BAD_INPUT if errors else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("screen")(screen)
