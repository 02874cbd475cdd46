"""Passwords, tokens, CSRF and security headers (sign-in throttling: ``throttle.py``).

Tokens (sessions, invitation links) are random and stored only as SHA-256 hashes, so a
database dump does not open anyone's session or form. CSRF uses a signed double-submit
cookie: the form token is an HMAC of a random per-browser cookie under the server secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

CSRF_COOKIE = "msc_csrf"
SESSION_COOKIE = "msc_session"
CSRF_FIELD = "csrf_token"

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: bytes, seed: str) -> str:
    return hmac.new(secret, b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, seed: str | None, submitted: str | None) -> bool:
    if not seed or not submitted:
        return False
    return hmac.compare_digest(csrf_token(secret, seed), submitted)


CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
