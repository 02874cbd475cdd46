"""``msc-screen serve``: the REST API, CDS Hooks service and web pages under uvicorn."""

from __future__ import annotations

import logging

import typer

from .common import EXIT_BAD_INPUT, fail, print_error


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default sqlite file "
                                  "msc-screen.db here; postgresql+psycopg://... also works)."),
    cds_clients: str | None = typer.Option(None, "--cds-clients", help="JSON file of trusted "
                                           "CDS clients (default env MSC_SCREEN_CDS_CLIENTS)."),
    insecure_no_auth: bool = typer.Option(False, "--insecure-no-auth", help="Accept CDS calls "
                                          "without a JWT (loopback only; development)."),
    base_url: str | None = typer.Option(None, "--base-url", help="Public URL the EHR calls "
                                        "(JWT audience and card links); default from requests."),
    policy: str | None = typer.Option(None, "--policy", help="Policy name or YAML file."),
    msc_orders: str | None = typer.Option(None, "--msc-orders", help="JSON file of codes and "
                                          "texts identifying IV MSC orders."),
    cors_origin: list[str] = typer.Option([], "--cors-origin", help="Browser origin allowed "
                                          "to call (repeat; e.g. https://sandbox.cds-hooks.org)."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes "
                                "(screening is CPU-bound; one per core)."),
) -> None:
    """Serve the REST API and the CDS Hooks service."""
    import uvicorn

    from ..errors import KnowledgeError
    from ..server.app import create_app
    from ..server.config import Settings

    settings = Settings(host=host, port=port, cds_clients=cds_clients,
                        insecure_no_auth=insecure_no_auth, base_url=base_url, policy=policy,
                        msc_orders_file=msc_orders, cors_origins=list(cors_origin),
                        shared_replay_cache=workers > 1)
    if db:
        settings.db_url = db
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if insecure_no_auth:
        print_error("--insecure-no-auth: CDS Hooks calls are NOT authenticated. "
                    "Development only; never expose this server.")
    try:
        app = create_app(settings)  # validates settings and migrates the database once
    except (ValueError, KnowledgeError, OSError) as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    if workers == 1:
        # forwarded headers are read by the app, from MSC_SCREEN_TRUSTED_PROXIES only
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                    proxy_headers=False)
        return
    import os

    from ..server.config import ENV_SERVE_SETTINGS
    from ..server.web.config import ENV_SECRET

    settings.create_schema = False
    os.environ[ENV_SERVE_SETTINGS] = settings.to_env()
    if not os.environ.get(ENV_SECRET):
        # one key for every worker process (inherited), or a form served by one worker fails
        # its CSRF check in another; still new on every start, as with one worker
        import secrets

        os.environ[ENV_SECRET] = secrets.token_urlsafe(32)
    uvicorn.run("msc_screen.server.app:create_app_from_env", factory=True, workers=workers,
                host=host, port=port, log_level="info", access_log=False, proxy_headers=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
