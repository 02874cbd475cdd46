"""``msc-screen terminology audit``: every code in the input that no value set claims, with
how many patients and records carry it and what the engine makes of it (see
``terminology.audit``)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import orjson
import typer

from ..errors import KnowledgeError
from ..fhir.reader import read_paths
from ..fhir.record import RecordBuilder
from ..knowledge import get_ruleset
from ..terminology.audit import (
    KINDS,
    CodeAudit,
    CodeTally,
    memoised,
    render_csv,
    render_table,
)
from .common import EXIT_BAD_INPUT, EXIT_OK, fail, print_error

terminology_app = typer.Typer(help="The codes records carry, against the knowledge base's "
                              "value sets.", no_args_is_help=True)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class Kind(StrEnum):  # the record kinds (``terminology.audit.KINDS``)
    condition = "condition"
    observation = "observation"
    medication = "medication"
    procedure = "procedure"
    allergy = "allergy"


@terminology_app.command("audit")
def audit(
    paths: list[Path] = typer.Argument(..., help="FHIR files or directories (Bundle, resource, "
                                       "NDJSON, .gz), as `msc-screen screen` reads them."),
    policy: str | None = typer.Option(None, "--policy", help="Policy name or YAML file (which "
                                      "rules, so which value sets, are read)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, json or csv."),
    top: int | None = typer.Option(None, "--top", min=1, help="Only the N codes carried by "
                                   "the most patients."),
    kind: Kind | None = typer.Option(None, "--kind", help="Only records of this kind: "
                                     + ", ".join(KINDS) + "."),
    root: Path | None = typer.Option(None, "--root", help="Knowledge-base directory (default: "
                                     "the packaged one), e.g. a copy with a value set or the "
                                     "reviewed-codes list edited, to see its effect."),
) -> None:
    """List the codes no value set claims: per code, patients and records carrying it, its
    displays, record kinds, and whether the safety net fired (for which rules), the code was
    reviewed, has no words to read, or nothing matched. Most patients first."""
    from ..engine.safety_net import safety_net

    if root is not None and not root.is_dir():
        fail(f"{root}: not a knowledge-base directory")
    try:
        ruleset = get_ruleset(policy, root)
    except KnowledgeError as exc:
        fail(str(exc))
    tally = CodeTally()
    builder = RecordBuilder.for_ruleset(ruleset, on_skip=tally.skipped)
    for result in read_paths(paths):
        builder.add(result)
    records = builder.finish()
    for rec in records:
        tally.add_record(rec)
    kinds = frozenset({kind.value}) if kind is not None else None
    table = CodeAudit(tally.rows(memoised(safety_net(ruleset).classify), kinds))
    rows = table.rows()
    shown = rows[:top] if top else rows
    out = sys.stdout.buffer
    if fmt is Format.json:
        doc = {"ruleset": ruleset.ruleset_info, "policy": ruleset.policy_info,
               "kind": kind.value if kind is not None else None, "patients": len(records),
               "codes": len(rows), "shown": len(shown), "rows": [r.to_dict() for r in shown]}
        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    elif fmt is Format.csv:
        out.write(render_csv(shown))
    else:
        out.write(render_table(shown, len(rows)).encode("utf-8"))
    out.flush()
    for e in builder.errors:
        print_error(e.describe())
    if not records and not builder.errors:
        print_error("no patients found in the input")
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_BAD_INPUT if builder.errors else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.add_typer(terminology_app, name="terminology")
