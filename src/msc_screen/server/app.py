"""The ASGI application factory: one app for the REST API, CDS Hooks and the web pages."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..store import Database, migrate
from .config import ENV_SERVE_SETTINGS, Settings
from .metrics import install_metrics
from .problems import install_error_handlers

log = logging.getLogger("msc_screen.server")


def _include_web(app: FastAPI) -> None:
    """Mount the web pages when ``msc_screen.server.web`` exists. It may define
    ``install(app)`` (middleware, static files) or just ``router``."""
    try:
        web = importlib.import_module(f"{__package__}.web")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.web":
            return
        raise
    if hasattr(web, "install"):
        web.install(app)
    else:
        app.include_router(web.router)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. State for route handlers: ``app.state.settings``, ``app.state.db``
    (a ``store.Database``) and ``app.state.cds`` (the CDS Hooks service)."""
    settings = settings or Settings()
    settings.check()
    from .cds.service import CdsService  # late: keeps import of the factory cheap

    db = Database(settings.db_url)
    if settings.create_schema:
        migrate(settings.db_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await app.state.cds.aclose()
            db.dispose()

    app = FastAPI(
        title="msc-screen",
        version=__version__,
        summary="Screens for contraindications to IV mesenchymal stem/stromal cell therapy.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.cds = CdsService(settings, db)
    install_error_handlers(app)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type"])
    install_metrics(app)
    app.state.cds.metrics = app.state.metrics

    from .cds import routes as cds_routes
    from .routes import health, rules, screen

    app.include_router(health.router)
    app.include_router(screen.router)
    app.include_router(rules.router)
    app.include_router(cds_routes.router)
    _include_web(app)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes (``serve --workers N``): settings come from the
    environment the parent process prepared."""
    import os

    raw = os.environ.get(ENV_SERVE_SETTINGS)
    return create_app(Settings.from_env(raw) if raw else None)
