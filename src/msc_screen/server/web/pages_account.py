"""A signed-in user's own account: enrol a TOTP second factor (shown as a secret and an
otpauth:// URI for any authenticator app; in force once a code confirms it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from ...store.clinic_models import User
from . import accounts
from .clinic import ClinicError
from .deps import checked_form, clinic, field, render, staff_user

router = APIRouter()


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, notice: str = "", user: User = Depends(staff_user)) -> Response:
    return render(request, "account.html", enrol=None, error=None,
                  notice="The second factor is on: sign-in now asks for a code."
                  if notice == "totp-on" else None)


@router.post("/account/totp", response_class=HTMLResponse)
def start(request: Request, user: User = Depends(staff_user),
          posted: FormData = Depends(checked_form)) -> Response:
    secret, uri = accounts.start_totp(clinic(request), user)
    return render(request, "account.html", enrol={"secret": secret, "uri": uri}, error=None,
                  notice=None)


@router.post("/account/totp/confirm", response_class=HTMLResponse)
def confirm(request: Request, user: User = Depends(staff_user),
            posted: FormData = Depends(checked_form)) -> Response:
    try:
        accounts.confirm_totp(clinic(request), user, field(posted, "code"))
    except ClinicError as exc:
        return render(request, "account.html", 400, enrol=None, error=str(exc), notice=None,
                      pending=True)
    return RedirectResponse("/account?notice=totp-on", status_code=303)
