"""A readable terminal report (Rich): decision first, then each finding with its evidence."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..model import Assessment, Evidence

DECISION_STYLE = {
    "contraindicated": "bold white on red",
    "physician-review": "bold black on yellow",
    "needs-information": "bold black on cyan",
    "no-contraindication-found": "bold white on blue",
}
SEVERITY_STYLE = {
    "contraindicated": "red",
    "physician-review": "yellow",
    "needs-information": "cyan",
    "recommendation": "blue",
}


def _evidence_line(e: Evidence) -> Text:
    t = Text("  • ")
    t.append(e.reference, style="bold")
    if e.code:
        t.append(f"  {e.code.display or e.code.code}")
        if e.code.system:
            t.append(f" [{e.code.system} {e.code.code}]", style="dim")
    if e.date:
        t.append(f"  {e.date}", style="dim")
    if e.text:
        snippet = e.text if len(e.text) <= 120 else e.text[:117] + "..."
        t.append(f'  "{snippet}"', style="italic")
    if e.span:
        t.append(f"  chars {e.span[0]}-{e.span[1]}", style="dim")
    if e.context:
        flags = [k for k, v in e.context.items() if v is True]
        if e.context.get("section"):
            flags.append(f"section: {e.context['section']}")
        if flags:
            t.append(f"  ({', '.join(flags)})", style="dim")
    if e.detail:
        t.append(f"  — {e.detail}", style="dim")
    if e.uncertain:
        t.append(f"  ⚠ {e.uncertain}", style="yellow")
    return t


def coverage_line(a: Assessment) -> Text:
    """What data the screening had: provided kinds with their counts, then what was not
    provided or is incomplete (with why), then the questions not answered."""
    t = Text("data: ", style="bold")
    unanswered = []
    first = True
    for kind, cov in a.coverage.items():
        if kind.startswith("answer:"):
            if cov.status != "provided":
                unanswered.append(kind[len("answer:"):])
            continue
        if not first:
            t.append(" · ", style="dim")
        first = False
        if cov.status == "provided":
            t.append(f"{kind} {cov.count}" if cov.count else f"{kind} (declared complete)"
                     if cov.reason == "declared complete" else kind, style="green")
        elif cov.status == "incomplete":
            t.append(f"{kind} INCOMPLETE ({cov.reason})" if cov.reason else
                     f"{kind} INCOMPLETE", style="bold red")
        else:
            t.append(f"{kind} not provided", style="cyan")
    if unanswered:
        t.append(f"\n      not answered: {', '.join(unanswered)}", style="cyan")
    return t


def render_assessment(a: Assessment, console: Console, *, show_absent: bool = False) -> None:
    head = Text()
    head.append(f" {a.decision.upper()} ", style=DECISION_STYLE[a.decision])
    head.append(f"  patient {a.patient_id}  as of {a.as_of.isoformat()}")
    parts: list[object] = [head]
    table = Table(show_header=True, header_style="bold", expand=True, box=None)
    table.add_column("Rule")
    table.add_column("Status")
    table.add_column("Severity")
    table.add_column("Summary", ratio=3)
    for f in a.findings:
        if f.status == "absent" and not show_absent:
            continue
        table.add_row(f.title, f.status, Text(f.severity, style=SEVERITY_STYLE[f.severity]),
                      f.summary)
    if table.row_count:
        parts.append(table)
    for f in a.findings:
        if f.status == "absent" and not (show_absent and f.evidence):
            continue
        if not f.evidence and not f.actions:
            continue
        parts.append(Text(f"{f.title} — evidence", style="bold underline"))
        parts.extend(_evidence_line(e) for e in f.evidence)
        for act in f.actions:
            codes = ", ".join(f"{c['code']} {c.get('display') or ''}".strip()
                              for c in act["codes"])
            parts.append(Text(f"  → {act['title']}" + (f" ({codes})" if codes else ""),
                              style="green"))
        cites = "; ".join(c["id"] for c in f.citations)
        parts.append(Text(f"  sources: {cites}", style="dim"))
    if a.coverage:
        parts.append(coverage_line(a))
    for w in a.warnings:
        parts.append(Text(f"⚠ {w}", style="yellow"))
    parts.append(Text(f"ruleset {a.ruleset['id']} {a.ruleset['version']} "
                      f"({a.ruleset['sha256'][:12]}), policy {a.policy['name']}", style="dim"))
    console.print(Panel(Group(*parts), expand=True))  # type: ignore[arg-type]
