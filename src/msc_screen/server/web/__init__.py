"""The clinic web app: patient questionnaire pages, clinician review pages, admin pages and
the FHIR Questionnaire. Server-rendered, works without JavaScript.

``install(app)`` is called by the app factory: it adds the security-header and CSRF-cookie
middleware, the static files, the error pages and the routers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from ...store import Database
from ...store import clinic_models as _tables  # noqa: F401  (registers the tables)
from ..config import Settings
from . import (
    pages_account,
    pages_admin,
    pages_audit,
    pages_auth,
    pages_cds_report,
    pages_clinic,
    pages_fhir,
    pages_patient,
    pages_queue,
)
from .clinic import Clinic
from .config import WebConfig
from .deps import HERE, CsrfFailed, Forbidden, LoginRequired, render
from .security import CSP, CSRF_COOKIE, SECURITY_HEADERS, new_token

router = APIRouter(include_in_schema=False)
router.include_router(pages_patient.router)
router.include_router(pages_auth.router)
router.include_router(pages_queue.router)
router.include_router(pages_clinic.router)
router.include_router(pages_audit.router)
router.include_router(pages_account.router)
router.include_router(pages_admin.router)
router.include_router(pages_cds_report.router)

# The strict CSP and the CSRF cookie belong to these pages; other doors (API, CDS Hooks,
# rule catalogue) set their own policies.
_WEB_PREFIXES = ("/login", "/logout", "/clinic", "/p/", "/safety", "/admin", "/account",
                 "/assets")


def _is_web(path: str) -> bool:
    return path == "/" or path.startswith(_WEB_PREFIXES)


class WebMiddleware(BaseHTTPMiddleware):
    """Strict security headers and a CSRF seed cookie on the web pages."""

    def __init__(self, app: Any, config: WebConfig) -> None:
        super().__init__(app)
        self.config = config

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        web = _is_web(request.url.path)
        seed = request.cookies.get(CSRF_COOKIE)
        if not seed and web:
            request.state.csrf_seed = new_token()
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if not web:
            return response
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        response.headers.setdefault("Content-Security-Policy", CSP)
        if self.config.cookie_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if not seed:
            response.set_cookie(CSRF_COOKIE, request.state.csrf_seed, httponly=True,
                                secure=self.config.cookie_secure, samesite="strict", path="/")
        return response


def install(app: FastAPI, settings: Settings | None = None) -> None:
    settings = settings or getattr(app.state, "settings", None) or Settings()
    config: WebConfig = getattr(app.state, "web_config", None) or WebConfig.from_settings(settings)
    db = getattr(app.state, "db", None)
    if not isinstance(db, Database):
        db = Database(settings.db_url)
        app.state.db = db
    app.state.web_config = config
    app.state.clinic = Clinic(db, config, settings.clock, settings.policy)
    app.add_middleware(WebMiddleware, config=config)
    app.mount("/assets", StaticFiles(directory=str(HERE / "static")), name="web-assets")
    app.include_router(pages_fhir.router)
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return render(request, "error.html", 401, title="Please sign in",
                      message="Your session ended. Sign in again to continue.")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> HTMLResponse:
        return render(request, "error.html", 403, title="Not allowed", message=exc.message)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> HTMLResponse:
        return render(request, "error.html", 403, title="Form expired",
                      message="This form could not be accepted (its security token is missing "
                              "or out of date). Go back, reload the page and try again.")
