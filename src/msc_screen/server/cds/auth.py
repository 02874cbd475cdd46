"""CDS Hooks client authentication: a signed JWT on every call, as the spec requires.

Asymmetric algorithms only (``none`` and HMAC are refused before any key is touched), ``iss``
in the allowlist, ``aud`` equal to the URL called, ``exp``/``iat`` checked against an
injectable clock, ``jti`` never accepted twice. Reasons go back in the 401; logs carry only
the reason and the issuer, never request content.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

log = logging.getLogger("msc_screen.server.auth")

ALLOWED_ALGS = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512",
                          "PS256", "PS384", "PS512", "EdDSA"})
JWKS_TTL_S = 300.0
MAX_TOKEN_BYTES = 16 * 1024


class AuthError(Exception):
    """Why a call is not authenticated; the message is safe to return to the caller."""


@dataclass
class TrustedClient:
    iss: str
    jwks: KeySet | None = None
    jwks_url: str | None = None
    _fetched: float = field(default=-1e18, repr=False)


def _b64json(part: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise AuthError(f"JWT {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise AuthError(f"JWT {what} is not a JSON object")
    return value


def load_clients(source: str | None) -> dict[str, TrustedClient]:
    """Trusted clients from a JSON file path or inline JSON: a list of ``{"iss", "jwks"}``
    or ``{"iss", "jwks_url"}``. Raises ValueError naming the entry that is wrong."""
    if not source:
        return {}
    text = source if source.lstrip().startswith("[") else Path(source).read_text("utf-8")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"CDS clients: not valid JSON ({exc})") from None
    if not isinstance(entries, list):
        raise ValueError("CDS clients: expected a JSON list of {iss, jwks | jwks_url}")
    clients: dict[str, TrustedClient] = {}
    for i, e in enumerate(entries):
        where = f"CDS clients[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("iss"), str) or not e["iss"]:
            raise ValueError(f"{where}: needs a string 'iss'")
        if ("jwks" in e) == ("jwks_url" in e):
            raise ValueError(f"{where}: give exactly one of 'jwks' or 'jwks_url'")
        client = TrustedClient(iss=e["iss"])
        if "jwks" in e:
            client.jwks = _public_keyset(e["jwks"], where)
        else:
            url = e["jwks_url"]
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ValueError(f"{where}: 'jwks_url' must be an http(s) URL")
            client.jwks_url = url
        clients[client.iss] = client
    return clients


def _public_keyset(value: Any, where: str) -> KeySet:
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise ValueError(f"{where}: 'jwks' must be a JWK Set {{\"keys\": [...]}}")
    keys = []
    for k in value["keys"]:
        if not isinstance(k, dict) or k.get("kty") == "oct":
            raise ValueError(f"{where}: symmetric ('oct') keys are not accepted")
        keys.append({n: v for n, v in k.items() if n not in ("d", "p", "q", "dp", "dq", "qi")})
    try:
        return KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}: invalid JWK Set ({exc})") from None


class ReplayCache:
    """``jti`` values seen, kept until their token expires (plus leeway)."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._max = max_entries

    def check_and_add(self, iss: str, jti: str, expires: float, now: float) -> bool:
        """False when (iss, jti) was already used and has not expired."""
        if len(self._seen) >= self._max:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
            if len(self._seen) >= self._max:
                raise AuthError("replay cache full; try again shortly")
        key = (iss, jti)
        if self._seen.get(key, -1.0) > now:
            return False
        self._seen[key] = expires
        return True


class DbReplayCache(ReplayCache):
    """The same contract backed by the database, so every worker process sees every jti."""

    def __init__(self, db: Any) -> None:
        super().__init__()
        self.db = db
        self._next_purge = 0.0

    def check_and_add(self, iss: str, jti: str, expires: float, now: float) -> bool:
        from sqlalchemy import delete
        from sqlalchemy.exc import IntegrityError

        from ...store.models import CdsJwtUse

        if len(jti) > 255:
            raise AuthError("JWT jti longer than 255 characters")
        if not super().check_and_add(iss, jti, expires, now):
            return False
        try:
            with self.db.session() as s:
                if now >= self._next_purge:
                    s.execute(delete(CdsJwtUse).where(CdsJwtUse.expires_at <= now))
                    self._next_purge = now + 60
                stale = s.get(CdsJwtUse, (iss, jti))
                if stale is not None:
                    if stale.expires_at > now:
                        return False
                    stale.expires_at = expires
                else:
                    s.add(CdsJwtUse(iss=iss, jti=jti, expires_at=expires))
        except IntegrityError:
            return False  # another worker recorded it first
        return True


class JwtVerifier:
    def __init__(self, clients: dict[str, TrustedClient], clock: Callable[[], float],
                 leeway_s: int = 60, http: httpx.AsyncClient | None = None,
                 replay: ReplayCache | None = None) -> None:
        self.clients = clients
        self.clock = clock
        self.leeway = leeway_s
        self.replay = replay or ReplayCache()
        self._http = http

    async def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The verified claims, or AuthError with the reason."""
        if not authorization:
            raise AuthError("missing Authorization: Bearer <JWT> header")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("Authorization must be 'Bearer <JWT>'")
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError("JWT too large")
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthError("JWT must have three dot-separated parts (JWS compact)")
        header = _b64json(parts[0], "header")
        alg = header.get("alg")
        if alg not in ALLOWED_ALGS:
            raise AuthError(f"JWT alg {str(alg)[:20]!r} refused: asymmetric algorithms only "
                            "(ES384, RS384, ...); 'none' and HMAC are not accepted")
        unverified = _b64json(parts[1], "payload")
        iss = unverified.get("iss")
        client = self.clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise AuthError("JWT iss is not a trusted CDS client")
        keys = await self._keys(client, header.get("jku"), header.get("kid"))
        try:
            decoded = jwt.decode(token, keys, algorithms=[alg])
        except JoseError as exc:
            raise AuthError(f"JWT signature not valid ({exc.error})") from None
        claims = dict(decoded.claims)
        self._check_claims(claims, audience)
        return claims

    def _check_claims(self, claims: dict[str, Any], audience: str) -> None:
        now = self.clock()
        for name in ("iss", "aud", "exp", "iat", "jti"):
            if name not in claims:
                raise AuthError(f"JWT claim {name!r} is required")
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise AuthError("JWT exp and iat must be numbers (seconds since the epoch)")
        if exp <= now - self.leeway:
            raise AuthError("JWT expired")
        if iat > now + self.leeway:
            raise AuthError("JWT iat is in the future")
        aud = claims["aud"]
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if audience.rstrip("/") not in [a.rstrip("/") for a in auds if isinstance(a, str)]:
            raise AuthError(f"JWT aud does not match the URL called ({audience})")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthError("JWT jti must be a non-empty string")
        if not self.replay.check_and_add(claims["iss"], jti, exp + self.leeway, now):
            raise AuthError("JWT jti already used (replay)")

    async def _keys(self, client: TrustedClient, jku: Any, kid: Any) -> KeySet:
        if client.jwks_url is None:
            assert client.jwks is not None
            return client.jwks
        if jku is not None and jku != client.jwks_url:
            raise AuthError("JWT jku is not the JWK Set URL allowlisted for this issuer")
        stale = time.monotonic() - client._fetched > JWKS_TTL_S
        missing = client.jwks is not None and kid is not None and not any(
            k.kid == kid for k in client.jwks.keys)
        if client.jwks is None or stale or (
                missing and time.monotonic() - client._fetched > 10):
            client.jwks = await self._fetch(client.jwks_url)
            client._fetched = time.monotonic()
        return client.jwks

    async def _fetch(self, url: str) -> KeySet:
        http = self._http or httpx.AsyncClient(timeout=3.0)
        try:
            resp = await http.get(url, headers={"Accept": "application/json"})
            resp.raise_for_status()
            return _public_keyset(resp.json(), f"JWK Set at {url}")
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not fetch JWK Set %s: %s", url, type(exc).__name__)
            raise AuthError("could not fetch the issuer's JWK Set") from None
        finally:
            if self._http is None:
                await http.aclose()
