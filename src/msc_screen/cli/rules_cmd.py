"""``msc-screen rules``: lint, list and show the knowledge base (rendered from the same compiled
rules the engine runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ..errors import KnowledgeError
from .common import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, fail

rules_app = typer.Typer(name="rules", help="Lint, list and show the screening rules.",
                        no_args_is_help=True, add_completion=False)

_SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _ruleset(policy: str | None, root: Path | None) -> Any:
    from ..knowledge import get_ruleset

    try:
        return get_ruleset(policy, root)
    except KnowledgeError as exc:
        fail(str(exc))


@rules_app.command("lint")
def lint_cmd(
    root: Path | None = typer.Option(None, "--root", help="Knowledge-base directory "
                                     "(default: the packaged one)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per finding."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Hide info findings."),
    vsac: Path | None = typer.Option(None, "--vsac", help="Also check that regenerating the "
                                     "expansions from this published VSAC file gives the "
                                     "shipped ones."),
) -> None:
    """Check every code (hand-listed and in the shipped expansions), range, reference,
    provenance and text of the knowledge base. Exit 1 on errors."""
    from ..knowledge.lint import has_errors, lint

    findings = lint(root, vsac)
    shown = [f for f in findings if not (quiet and f.severity == "info")]
    if as_json:
        for f in shown:
            sys.stdout.buffer.write(orjson.dumps(f.to_dict()) + b"\n")
    else:
        console = Console(highlight=False)
        if shown:
            table = Table(title="Knowledge-base lint", show_lines=False)
            for col in ("severity", "check", "where", "message"):
                table.add_column(col, overflow="fold")
            for f in shown:
                table.add_row(f"[{_SEV_STYLE[f.severity]}]{f.severity}[/]", f.check, f.where,
                              f.message)
            console.print(table)
        counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
        console.print(f"{counts['error']} error(s), {counts['warning']} warning(s), "
                      f"{counts['info']} info")
    raise typer.Exit(EXIT_INTERNAL if has_errors(findings) else EXIT_OK)


@rules_app.command("import-vsac")
def import_vsac_cmd(
    vsac: Path = typer.Option(..., "--vsac", help="Published VSAC value sets: FHIR ValueSet "
                              "NDJSON (.gz), JSON, or a directory of them."),
    root: Path | None = typer.Option(None, "--root", help="Knowledge-base directory "
                                     "(default: the packaged one)."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 when a shipped "
                               "expansion differs from what the published file gives."),
) -> None:
    """Regenerate valuesets/expansions/*.tsv from published VSAC value sets, as each value set's
    `sources` (OID, version, code systems, keep/drop with reasons) say. A new VSAC release is a
    version change in the YAML and a reviewed diff of the generated files."""
    from ..knowledge.loader import load_knowledge_base
    from ..terminology.expansion import EXPANSIONS_DIR
    from ..terminology.vsac import VsacError, read_published, regenerate, write

    try:
        kb = load_knowledge_base(root, expansions=False)
        published = read_published(vsac)
        files = regenerate(kb.valuesets.values(), published)
    except KnowledgeError as exc:
        fail(str(exc))
    except VsacError as exc:
        fail(f"cannot build the expansions:\n{exc}")
    out_dir = kb.root / EXPANSIONS_DIR
    console = Console(highlight=False)
    if check:
        stale = sorted(vid for vid, data in files.items()
                       if not (out_dir / f"{vid}.tsv").exists()
                       or (out_dir / f"{vid}.tsv").read_bytes() != data)
        extra = sorted(p.name for p in out_dir.glob("*.tsv") if p.stem not in files)
        for vid in stale:
            console.print(f"differs: {EXPANSIONS_DIR}/{vid}.tsv")
        for name in extra:
            console.print(f"no longer generated: {EXPANSIONS_DIR}/{name}")
        console.print(f"{len(files)} expansion(s) checked, {len(stale) + len(extra)} differ")
        raise typer.Exit(EXIT_INTERNAL if stale or extra else EXIT_OK)
    written, removed = write(out_dir, files)
    table = Table(title=f"Expansions from {vsac.name}")
    for col in ("value set", "sources", "codes", "dropped", "file"):
        table.add_column(col, overflow="fold", no_wrap=col == "value set")
    from ..terminology.expansion import parse

    for vid, data in sorted(files.items()):
        exp = parse(data, vid)
        table.add_row(vid, str(len(exp.sources)), str(len(exp.rows)), str(len(exp.dropped)),
                      "written" if f"{vid}.tsv" in written else "unchanged")
    console.print(table)
    for name in removed:
        console.print(f"removed {EXPANSIONS_DIR}/{name} (its value set has no sources now)")
    console.print(f"{len(written)} written, {len(removed)} removed; review with `git diff`, then "
                  "run `msc-screen rules lint`")


@rules_app.command("export")
def export_cmd(
    out: Path = typer.Argument(..., metavar="OUT", help="Directory to write into."),
    fmt: str = typer.Option("fhir", "--format", help="Only `fhir`: one FHIR R4 ValueSet JSON "
                            "file per value set."),
    root: Path | None = typer.Option(None, "--root", help="Knowledge-base directory "
                                     "(default: the packaged one)."),
    timestamp: str | None = typer.Option(None, "--timestamp", help="expansion.timestamp to "
                                         "write (default: now, UTC)."),
) -> None:
    """Write every value set as a FHIR R4 ValueSet (ValueSet-<id>.json): url, version, the
    source OIDs as identifiers, compose (ICD-10-CM ranges and categories as is-a filters) and
    the full expansion (ICD-10-CM with all descendants), exactly what the engine matches."""
    from ..knowledge.export import export_fhir
    from ..knowledge.loader import load_knowledge_base

    if fmt != "fhir":
        fail(f"unknown format {fmt!r} (known: fhir)", EXIT_BAD_INPUT)
    try:
        kb = load_knowledge_base(root)
    except KnowledgeError as exc:
        fail(str(exc))
    paths = export_fhir(kb, out, timestamp)
    Console(highlight=False).print(f"{len(paths)} ValueSet resource(s) written to {out}")


@rules_app.command("list")
def list_cmd(
    policy: str | None = typer.Option(None, "--policy", help="Policy name or YAML file."),
    as_json: bool = typer.Option(False, "--json", help="JSON array instead of a table."),
) -> None:
    """The rules in report order: id, title, category, origin and severity."""
    rs = _ruleset(policy, None)
    rows = [{"id": r.id, "title": r.title, "category": r.category, "origin": r.origin,
             "severity": r.severity} for r in rs.rules]
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
        return
    table = Table(title=f"Rules ({rs.id} {rs.version}, policy {rs.policy_name})")
    table.add_column("id", no_wrap=True)
    for col in ("title", "category", "origin", "severity"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("id", "title", "category", "origin", "severity")))
    Console(highlight=False).print(table)


@rules_app.command("show")
def show_cmd(
    rule_id: str = typer.Argument(..., metavar="ID", help="Rule id (see `rules list`)."),
    policy: str | None = typer.Option(None, "--policy", help="Policy name or YAML file."),
    as_json: bool = typer.Option(False, "--json", help="The catalogue entry as JSON."),
) -> None:
    """One rule as a clinician reads it: criteria in words, rationale, citations, parameters
    and source attributes."""
    from ..render.catalogue import rule_entry

    rs = _ruleset(policy, None)
    try:
        rule = rs.rule(rule_id)
    except KeyError:
        known = ", ".join(r.id for r in rs.rules)
        fail(f"no rule {rule_id!r} in policy {rs.policy_name!r} (known: {known})",
             EXIT_BAD_INPUT)
    entry = rule_entry(rule, rs)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(entry, option=orjson.OPT_INDENT_2) + b"\n")
        return
    _print_entry(entry)


def _print_entry(e: dict[str, Any]) -> None:
    c = Console(highlight=False)
    c.print(f"[bold]{e['title']}[/] ({e['id']})")
    c.print(f"category {e['category']} · origin {e['origin']}"
            + (f" (article group {e['seed_group']})" if e.get("seed_group") else "")
            + f" · severity [bold]{e['severity']}[/]")
    app_ = e["applicability"]
    if app_["sex"] or app_["min_age"] is not None or app_["max_age"] is not None:
        c.print("Applies to: " + ", ".join(x for x in (
            "/".join(app_["sex"]) if app_["sex"] else "",
            f"age ≥ {app_['min_age']}" if app_["min_age"] is not None else "",
            f"age ≤ {app_['max_age']}" if app_["max_age"] is not None else "") if x))
    for part, heading in (("present_if", "Present if any of"), ("unknown_if", "Unknown if"),
                          ("absent_if", "Absent if")):
        items = e["criteria"][part]
        if items:
            c.print(f"\n[bold]{heading}:[/]")
            for s in items:
                c.print(f"  • {s}", markup=False)
    c.print(f"Otherwise: {e['criteria']['otherwise']}")
    if e["parameters"]:
        c.print("\n[bold]Parameters[/] (policy settings):")
        for k, p in e["parameters"].items():
            unit = f" {p['unit']}" if p.get("unit") and p["value"] is not None else ""
            dflt = "" if p["value"] == p["default"] else f" (default {p['default']})"
            c.print(f"  {k} = {p['value']}{unit}{dflt}: {p['description'].strip()}",
                    markup=False)
    c.print("\n[bold]Rationale[/]")
    c.print(e["rationale"], markup=False)
    c.print("\n[bold]For patients[/]")
    c.print(e["patient_text"], markup=False)
    if e["actions"]:
        c.print("\n[bold]Actions[/]")
        for a in e["actions"]:
            codes = ", ".join(str(x.get("code")) for x in a["codes"])
            c.print(f"  {a['title']} (when {'/'.join(a['when'])})"
                    + (f": {codes}" if codes else ""), markup=False)
    c.print("\n[bold]Citations[/]")
    for cit in e["citations"]:
        ref = f" doi:{cit['doi']}" if cit.get("doi") else (f" {cit['url']}" if cit.get("url")
                                                           else "")
        c.print(f"  [{cit['id']}] {cit['text']}{ref}", markup=False)
    sa = e["source_attributes"]
    c.print("\n[bold]Source attributes[/] (ONC HTI-1)")
    c.print(f"  developer: {sa['developer']}\n  funding: {sa['funding_source']}\n"
            f"  released {sa['release_date']}, revised {sa['revision_date']}\n"
            f"  uses: {', '.join(sa['uses']) or 'none of the listed attributes'}", markup=False)
    c.print(f"\nruleset {e['ruleset']['id']} {e['ruleset']['version']} · policy "
            f"{e['policy']['name']}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
