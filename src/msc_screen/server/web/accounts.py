"""Account changes an admin makes (role, password reset, second factor) and a user's own TOTP
enrolment (RFC 6238 via pyotp). Each is one transaction with its audit entry; a role change,
password reset or deactivation ends the user's sessions."""

from __future__ import annotations

import pyotp
from sqlalchemy import delete
from sqlalchemy.orm import Session

from ...store.clinic_models import ROLES, User, WebSession
from .clinic import Clinic, ClinicError
from .security import hash_password

ISSUER = "msc-screen"


def totp_ok(secret: str, code: str) -> bool:
    """The code is the current one (or the one either side, for clock drift)."""
    return len(code) == 6 and code.isdigit() and pyotp.TOTP(secret).verify(code, valid_window=1)


def _user(s: Session, uid: int) -> User:
    u = s.get(User, uid)
    if u is None:
        raise ClinicError("No such user.")
    return u


def _end_sessions(s: Session, uid: int) -> None:
    s.execute(delete(WebSession).where(WebSession.user_id == uid))


def set_role(c: Clinic, actor: User, uid: int, role: str) -> None:
    if role not in ROLES:
        raise ClinicError("Role must be staff, physician or admin.")
    with c.write() as s:
        u = _user(s, uid)
        if u.id == actor.id:
            raise ClinicError("You cannot change your own role; ask another admin.")
        if u.role == role:
            return
        before, u.role = u.role, role
        _end_sessions(s, u.id)
        c.audit(s, actor.username, "user.role", f"User/{u.id}", role=role, before=before)


def reset_password(c: Clinic, actor: User, uid: int, password: str) -> None:
    if len(password) < 12:
        raise ClinicError("Passwords need at least 12 characters.")
    with c.write() as s:
        u = _user(s, uid)
        u.password_hash = hash_password(password)
        _end_sessions(s, u.id)
        c.audit(s, actor.username, "user.password-reset", f"User/{u.id}")


def remove_totp(c: Clinic, actor: User, uid: int) -> None:
    with c.write() as s:
        u = _user(s, uid)
        u.totp_secret = u.totp_pending = None
        c.audit(s, actor.username, "user.totp-remove", f"User/{u.id}")


def start_totp(c: Clinic, user: User) -> tuple[str, str]:
    """A new secret to enrol (not in force until a code confirms it): (secret, otpauth URI)."""
    secret = pyotp.random_base32()
    with c.write() as s:
        u = _user(s, user.id)
        u.totp_pending = secret
        c.audit(s, user.username, "user.totp-start", f"User/{u.id}")
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return secret, uri


def confirm_totp(c: Clinic, user: User, code: str) -> None:
    with c.write() as s:
        u = _user(s, user.id)
        if not u.totp_pending:
            raise ClinicError("Start the set-up again: no code is awaiting confirmation.")
        if not totp_ok(u.totp_pending, code.strip().replace(" ", "")):
            raise ClinicError("That code is not the current one; enter the 6 digits the app "
                              "shows now.")
        u.totp_secret, u.totp_pending = u.totp_pending, None
        c.audit(s, user.username, "user.totp-enrol", f"User/{u.id}")
