"""Request plumbing shared by the page routers: the clinic, the signed-in user, CSRF-checked
forms and template rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from ...store.clinic_models import ROLES, User
from .clinic import Clinic
from .coverage_view import has_clinical_data
from .security import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, csrf_ok, csrf_token

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
# a "no contraindication found" is shown as such (green) only when the screening was given
# clinical data (templates/clinic/_decision.html)
templates.env.globals["has_clinical_data"] = has_clinical_data


class LoginRequired(Exception):
    """Raised by ``require``; the handler sends the browser to the sign-in page."""


class Forbidden(Exception):
    def __init__(self, message: str = "You do not have access to this page.") -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    pass


def clinic(request: Request) -> Clinic:
    c: Clinic = request.app.state.clinic
    return c


def current_user(request: Request) -> User | None:
    if "user" not in request.state._state:
        request.state.user = clinic(request).session_user(request.cookies.get(SESSION_COOKIE))
    u: User | None = request.state.user
    return u


def require(request: Request, *roles: str) -> User:
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    if roles and user.role not in roles:
        raise Forbidden()
    return user


def staff_user(request: Request) -> User:
    return require(request, *ROLES)


def admin_user(request: Request) -> User:
    return require(request, "admin")


def csrf_seed(request: Request) -> str:
    seed: str = getattr(request.state, "csrf_seed", None) or request.cookies.get(CSRF_COOKIE, "")
    return seed


async def checked_form(request: Request) -> FormData:
    """The posted form, refused unless its CSRF token matches this browser's cookie."""
    form = await request.form(max_part_size=clinic(request).config.max_upload_bytes)
    submitted = form.get(CSRF_FIELD)
    if not csrf_ok(clinic(request).config.secret_key, request.cookies.get(CSRF_COOKIE),
                   submitted if isinstance(submitted, str) else None):
        raise CsrfFailed()
    return form


def field(form: FormData, name: str) -> str:
    v = form.get(name)
    return v if isinstance(v, str) else ""


def render(request: Request, name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("user", getattr(request.state, "user", None))
    ctx["csrf_token"] = csrf_token(clinic(request).config.secret_key, csrf_seed(request))
    resp: HTMLResponse = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    resp.headers["Cache-Control"] = "no-store"
    return resp
