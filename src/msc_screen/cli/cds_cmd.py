"""``msc-screen cds report``: the CDS Hooks alert-fatigue figures from the call audit.

Per rule: cards fired, in how many calls, accepted, overridden (and why); per hook: calls and
calls that showed a card. Read from the server's database (``cds_calls``, ``cds_call_cards``
joined to ``cds_feedback`` on the card's uuid)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import typer

from .common import EXIT_BAD_INPUT, fail

cds_app = typer.Typer(help="The CDS Hooks service's call audit.", no_args_is_help=True)


def _day(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
    except ValueError:
        fail(f"{name}: {value!r} is not a date (YYYY-MM-DD)", EXIT_BAD_INPUT)
        raise


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def render_text(r: dict[str, Any]) -> str:
    lines = ["CDS Hooks calls" + (f" from {r['since'][:10]}" if r["since"] else "")
             + (f" until {r['until'][:10]}" if r["until"] else "")]
    lines.append(f"{'hook':<14}{'calls':>8}{'with a card':>13}{'cards':>8}{'refused':>9}")
    for hook, h in sorted(r["hooks"].items()):
        share = f"{h['calls_with_cards']} ({h['calls_with_cards'] / h['calls']:.0%})"
        lines.append(f"{hook:<14}{h['calls']:>8}{share:>13}{h['cards']:>8}{h['refused']:>9}")
    lines += ["", f"{'rule':<36}{'fired':>7}{'calls':>7}{'accepted':>10}{'overridden':>12}"
                  f"  override reasons"]
    for rule, e in r["rules"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in e["override_reasons"].items())
        lines.append(f"{rule[:35]:<36}{e['fired']:>7}{e['calls']:>7}"
                     f"{e['accepted']:>5} {_pct(e['accepted_rate']):>4}"
                     f"{e['overridden']:>7} {_pct(e['override_rate']):>4}  {reasons}")
    if not r["rules"]:
        lines.append("(no cards recorded)")
    lines.append(f"\nfeedback naming no recorded card: {r['feedback_without_a_recorded_card']}")
    return "\n".join(lines)


@cds_app.command("report")
def report_cmd(
    db: str | None = typer.Option(None, "--db", help="Database URL (default: the server's, "
                                  "env MSC_SCREEN_DB or sqlite file msc-screen.db here)."),
    since: str | None = typer.Option(None, "--since", help="First day (YYYY-MM-DD, UTC)."),
    until: str | None = typer.Option(None, "--until", help="Day after the last (YYYY-MM-DD)."),
    fmt: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Per rule: fired, accepted, overridden with reasons (the alert-fatigue figures)."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..server.cds.audit import report
    from ..server.config import default_db_url
    from ..store import Database

    if fmt not in ("text", "json"):
        fail(f"--format: {fmt!r} is not one of text, json", EXIT_BAD_INPUT)
    start, end = _day(since, "--since"), _day(until, "--until")
    database = Database(db or default_db_url())
    try:
        r = report(database, start, end)
    except SQLAlchemyError as exc:
        fail(f"cannot read the CDS call audit at the given database ({type(exc).__name__}; "
             "run the server once, or `msc-screen serve`, to create its tables)", EXIT_BAD_INPUT)
        return
    finally:
        database.dispose()
    typer.echo(json.dumps(r, indent=2) if fmt == "json" else render_text(r))


def register(app: typer.Typer) -> None:
    app.add_typer(cds_app, name="cds")
