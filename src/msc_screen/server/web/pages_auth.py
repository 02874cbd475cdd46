"""Sign-in and sign-out: password, optional TOTP second factor, throttled per account and per
address (throttle.py); failures audited with the user name and client address."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from ...store.clinic_models import User
from .accounts import totp_ok
from .deps import checked_form, clinic, current_user, field, render
from .security import SESSION_COOKIE, check_password
from .throttle import client_address

router = APIRouter()


def _client(request: Request) -> str:
    """The client's address: forwarded headers only from the configured proxies."""
    return client_address(request.client.host if request.client else None,
                          request.headers.get("x-forwarded-for"),
                          clinic(request).config.trusted_proxies)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return RedirectResponse("/clinic" if current_user(request) else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/clinic") -> HTMLResponse:
    return render(request, "clinic/login.html", next=_safe_next(next), error=None)


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, host, backslash or control character)."""
    ok = (target.startswith("/") and not target.startswith("//") and "\\" not in target
          and target.isprintable() and ":" not in target.split("?", 1)[0])
    return target if ok else "/clinic"


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, posted: FormData = Depends(checked_form)) -> Response:
    """Password, then the second factor where the account has one. Failures make the next
    attempt for the account and the address wait (throttle.py); the right password works
    once the wait is over."""
    c = clinic(request)
    username = field(posted, "username").strip()[:80]
    password = field(posted, "password")
    code = field(posted, "code").strip().replace(" ", "")
    nxt = _safe_next(field(posted, "next") or "/clinic")
    address = _client(request)
    keys = (f"user:{username.lower()}", f"ip:{address}")
    wait = c.throttle.wait_s(*keys)
    if wait:
        return render(request, "clinic/login.html", 429, next=nxt, username=username,
                      error=f"Too many failed sign-in attempts. Wait {wait} second"
                            f"{'' if wait == 1 else 's'} and try again.")
    with c.read() as s:
        user = s.scalar(select(User).where(User.username == username))
    ok = check_password(user.password_hash if user else None, password) and user is not None \
        and user.active
    why = "password"
    if ok and user is not None and user.totp_secret and not totp_ok(user.totp_secret, code):
        ok, why = False, "code"
    if not ok or user is None:
        c.throttle.failed(*keys)
        with c.write() as s:
            c.audit(s, "anonymous", "login.failed", None, username=username,
                    address=address, failed=why)
        msg = ("Enter the 6-digit code from your authenticator app." if why == "code"
               else "The user name or password is not right.")
        return render(request, "clinic/login.html", 401, next=nxt, username=username,
                      error=msg, ask_code=why == "code")
    c.throttle.succeeded(keys[0])
    token = c.start_session(user)
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, secure=c.config.cookie_secure,
                    samesite="strict", path="/")
    return resp


@router.post("/logout")
def logout(request: Request, posted: FormData = Depends(checked_form)) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        clinic(request).end_session(token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
