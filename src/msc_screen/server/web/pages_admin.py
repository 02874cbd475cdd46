"""Admin pages: user accounts and the policy the clinic screens under."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from ...knowledge import get_ruleset
from ...store.clinic_models import ROLES, User
from . import accounts
from .clinic import ClinicError
from .deps import admin_user, checked_form, clinic, field, render

router = APIRouter()


def _page(request: Request, status: int = 200, error: str | None = None,
          notice: str | None = None) -> HTMLResponse:
    c = clinic(request)
    with c.read() as s:
        users = s.scalars(select(User).order_by(User.username)).all()
        current = c.policy(s) or get_ruleset(None).policy_name
    kb = get_ruleset(c.default_policy).kb
    return render(request, "admin/admin.html", status, users=users, roles=ROLES,
                  policies=sorted(kb.policies.values(), key=lambda p: p.name),
                  current_policy=current, error=error, notice=notice)


@router.get("/admin", response_class=HTMLResponse)
def admin(request: Request, notice: str = "", user: User = Depends(admin_user)) -> HTMLResponse:
    return _page(request, notice=NOTICES.get(notice))


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(request: Request, user: User = Depends(admin_user),
                posted: FormData = Depends(checked_form)) -> Response:
    try:
        clinic(request).create_user(field(posted, "username"), field(posted, "password"),
                                    field(posted, "role"), actor=user.username)
    except ClinicError as exc:
        return _page(request, 400, error=str(exc))
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/users/{uid}/active", response_class=HTMLResponse)
def set_active(request: Request, uid: int, user: User = Depends(admin_user),
               posted: FormData = Depends(checked_form)) -> Response:
    try:
        clinic(request).set_user_active(user, uid, field(posted, "active") == "true")
    except ClinicError as exc:
        return _page(request, 400, error=str(exc))
    return RedirectResponse("/admin", status_code=303)


NOTICES = {
    "policy": "Policy saved. New screenings use it; re-screen a patient to apply it to "
              "earlier answers.",
    "user": "The account was changed; the user's open sessions were ended.",
    "totp": "The second factor was removed; the user can set up a new one under Account.",
}


@router.post("/admin/users/{uid}/role", response_class=HTMLResponse)
def set_role(request: Request, uid: int, user: User = Depends(admin_user),
             posted: FormData = Depends(checked_form)) -> Response:
    try:
        accounts.set_role(clinic(request), user, uid, field(posted, "role"))
    except ClinicError as exc:
        return _page(request, 400, error=str(exc))
    return RedirectResponse("/admin?notice=user", status_code=303)


@router.post("/admin/users/{uid}/password", response_class=HTMLResponse)
def reset_password(request: Request, uid: int, user: User = Depends(admin_user),
                   posted: FormData = Depends(checked_form)) -> Response:
    try:
        accounts.reset_password(clinic(request), user, uid, field(posted, "password"))
    except ClinicError as exc:
        return _page(request, 400, error=str(exc))
    return RedirectResponse("/admin?notice=user", status_code=303)


@router.post("/admin/users/{uid}/totp-remove", response_class=HTMLResponse)
def remove_totp(request: Request, uid: int, user: User = Depends(admin_user),
                posted: FormData = Depends(checked_form)) -> Response:
    try:
        accounts.remove_totp(clinic(request), user, uid)
    except ClinicError as exc:
        return _page(request, 400, error=str(exc))
    return RedirectResponse("/admin?notice=totp", status_code=303)


@router.post("/admin/policy", response_class=HTMLResponse)
def set_policy(request: Request, user: User = Depends(admin_user),
               posted: FormData = Depends(checked_form)) -> Response:
    """A policy change needs a reason and an explicit confirmation (it changes every later
    screening); both are checked here, the reason goes into the audit entry."""
    if field(posted, "confirm") != "yes":
        return _page(request, 400, error="Tick the confirmation: the new policy applies to "
                                         "every screening from now on.")
    try:
        clinic(request).set_policy(user, field(posted, "policy"), field(posted, "reason"))
    except ClinicError as exc:
        return _page(request, 400, error=str(exc))
    return RedirectResponse("/admin?notice=policy", status_code=303)
