"""``msc-screen audit verify``: walk the web app's hash-chained audit log.

Exit 0 when every row links to the one before and matches its hash; 2 when a row does not
(the first broken row is named) or the database cannot be read."""

from __future__ import annotations

import typer

from .common import EXIT_BAD_INPUT, fail

audit_app = typer.Typer(help="The web app's tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    db: str | None = typer.Option(None, "--db", help="Database URL (default: the server's, "
                                  "env MSC_SCREEN_DB or sqlite file msc-screen.db here)."),
) -> None:
    """Check the audit chain; report the first row that was changed, removed or reordered."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..server.config import default_db_url
    from ..store import Database
    from ..store.audit import verify as verify_chain

    url = db or default_db_url()
    database = Database(url)
    try:
        with database.session() as s:
            result = verify_chain(s)
    except SQLAlchemyError as exc:
        fail(f"cannot read the audit log at the given database: {type(exc).__name__}: "
             f"{str(exc).splitlines()[0][:200]}", EXIT_BAD_INPUT)
        return
    finally:
        database.dispose()
    if not result.ok:
        fail(f"audit chain broken at row {result.first_bad}: {result.reason} "
             f"({result.rows} rows verified before it)", EXIT_BAD_INPUT)
    typer.echo(f"audit chain ok: {result.rows} rows verified")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
