"""A value shown once on the page a POST redirects to (post/redirect/get): a new
questionnaire link. Kept in a signed, HttpOnly cookie scoped to that patient's page and
deleted when shown, so a refresh neither repeats the action nor shows the link again."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Response

from .deps import clinic

FLASH_COOKIE = "msc_flash"


def _sign(secret: bytes, kind: str, value: str) -> str:
    return hmac.new(secret, f"flash:{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _path(pid: int) -> str:
    return f"/clinic/patients/{pid}"


def set_flash(request: Request, resp: Response, kind: str, value: str, pid: int) -> None:
    c = clinic(request)
    resp.set_cookie(FLASH_COOKIE, f"{value}.{_sign(c.config.secret_key, kind, value)}",
                    max_age=300, httponly=True, secure=c.config.cookie_secure,
                    samesite="strict", path=_path(pid))


def take_flash(request: Request, kind: str) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE, "")
    value, _, sig = raw.rpartition(".")
    if not value or not hmac.compare_digest(
            sig, _sign(clinic(request).config.secret_key, kind, value)):
        return None
    return value


def clear_flash(resp: Response, pid: int) -> None:
    resp.delete_cookie(FLASH_COOKIE, path=_path(pid))
