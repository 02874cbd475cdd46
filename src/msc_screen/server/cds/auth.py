"""CDS Hooks client authentication: a signed JWT on every call, as the spec requires.

Asymmetric algorithms only (``none`` and HMAC are refused before any key is touched), header
``typ`` ``JWT``, ``iss`` (and, where the entry lists them, ``tenant``) in the allowlist,
``aud`` equal to the URL called, ``exp``/``iat``/``nbf`` checked against an injectable clock,
a lifetime (``exp - iat``) no longer than the client's cap, and a ``jti`` never accepted
twice. Reasons go back in the 401; logs carry only the reason and the issuer, never request
content.
"""

from __future__ import annotations

import base64
import heapq
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .clients import Clients, TrustedClient, load_clients, public_keyset

log = logging.getLogger("msc_screen.server.auth")

ALLOWED_ALGS = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512",
                          "PS256", "PS384", "PS512", "EdDSA"})
JWKS_TTL_S = 300.0
MAX_TOKEN_BYTES = 16 * 1024

__all__ = ["AuthError", "Caller", "DbReplayCache", "JwtVerifier", "ReplayCache",
           "TrustedClient", "load_clients"]


class AuthError(Exception):
    """Why a call is not authenticated; the message is safe to return to the caller."""


@dataclass(frozen=True)
class Caller:
    """Who called, from the verified token: for the fhirServer check and the audit."""

    iss: str
    client: TrustedClient
    tenant: str | None = None
    sub: str | None = None
    jti: str | None = None


def _b64json(part: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise AuthError(f"JWT {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise AuthError(f"JWT {what} is not a JSON object")
    return value


class ReplayCache:
    """``jti`` values seen, each kept until its token expires (plus leeway). Token lifetimes
    are capped, so the cache holds at most (calls per second x lifetime) entries; past
    ``max_entries`` the entry closest to expiry is forgotten early (logged) rather than every
    call refused: a bounded, tiny replay window instead of a lock-out."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._max = max_entries
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._seen)

    def _purge(self, now: float) -> None:
        heap, seen = self._heap, self._seen
        while heap and (heap[0][0] <= now or len(heap) > 2 * self._max):
            exp, key = heapq.heappop(heap)
            if seen.get(key) == exp:
                del seen[key]

    def check_and_add(self, iss: str, jti: str, expires: float, now: float) -> bool:
        """False when (iss, jti) was already used and has not expired."""
        self._purge(now)
        key = (iss, jti)
        if self._seen.get(key, -1.0) > now:
            return False
        while len(self._seen) >= self._max and self._heap:
            exp, old = heapq.heappop(self._heap)
            if self._seen.get(old) == exp:
                del self._seen[old]
                self.evicted += 1
                if self.evicted in (1, 1000) or self.evicted % 100_000 == 0:
                    log.warning("JWT replay cache full (%d entries): %d token id(s) forgotten "
                                "before they expired; lower client token lifetimes or use "
                                "the shared cache", self._max, self.evicted)
        self._seen[key] = expires
        heapq.heappush(self._heap, (expires, key))
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


def _number(claims: dict[str, Any], name: str) -> float | None:
    v = claims.get(name)
    if v is None:
        return None
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise AuthError(f"JWT {name} must be a number (seconds since the epoch)")
    return float(v)


class JwtVerifier:
    def __init__(self, clients: Clients | dict[str, TrustedClient],
                 clock: Callable[[], float], leeway_s: int = 60,
                 http: httpx.AsyncClient | None = None,
                 replay: ReplayCache | None = None) -> None:
        self.clients: Clients = {k: v if isinstance(v, list) else [v]
                                 for k, v in clients.items()}
        self.clock = clock
        self.leeway = leeway_s
        self.replay = replay if replay is not None else ReplayCache()
        self._http = http

    async def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The verified claims, or AuthError with the reason."""
        return dict((await self.verify_caller(authorization, audience))[1])

    async def verify_caller(self, authorization: str | None, audience: str
                            ) -> tuple[Caller, dict[str, Any]]:
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
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise AuthError("JWT header typ must be 'JWT'")
        unverified = _b64json(parts[1], "payload")
        client = self._client(unverified.get("iss"), unverified.get("tenant"))
        keys = await self._keys(client, header.get("jku"), header.get("kid"))
        try:
            decoded = jwt.decode(token, keys, algorithms=[alg])
        except JoseError as exc:
            raise AuthError(f"JWT signature not valid ({exc.error})") from None
        claims = dict(decoded.claims)
        self._check_claims(claims, audience, client)
        tenant, sub = claims.get("tenant"), claims.get("sub")
        return Caller(str(claims["iss"]), client,
                      tenant if isinstance(tenant, str) else None,
                      sub if isinstance(sub, str) else None, str(claims["jti"])), claims

    def _client(self, iss: Any, tenant: Any) -> TrustedClient:
        entries = self.clients.get(iss) if isinstance(iss, str) else None
        if not entries:
            raise AuthError("JWT iss is not a trusted CDS client")
        for c in entries:
            if c.tenants is not None and isinstance(tenant, str) and tenant in c.tenants:
                return c
        for c in entries:
            if c.tenants is None:
                return c
        if tenant is None:
            raise AuthError("JWT tenant claim is required for this issuer")
        raise AuthError("JWT tenant is not one allowed for this issuer")

    def _check_claims(self, claims: dict[str, Any], audience: str,
                      client: TrustedClient) -> None:
        now = self.clock()
        for name in ("iss", "aud", "exp", "iat", "jti"):
            if name not in claims:
                raise AuthError(f"JWT claim {name!r} is required")
        exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf")
        assert exp is not None and iat is not None
        if exp <= now - self.leeway:
            raise AuthError("JWT expired")
        if iat > now + self.leeway:
            raise AuthError("JWT iat is in the future")
        if nbf is not None and nbf > now + self.leeway:
            raise AuthError("JWT not valid yet (nbf is in the future)")
        if exp - iat > client.max_lifetime_s:
            raise AuthError(f"JWT lifetime (exp - iat = {exp - iat:.0f} s) exceeds the "
                            f"{client.max_lifetime_s} s allowed for this client")
        if client.tenants is not None and claims.get("tenant") not in client.tenants:
            raise AuthError("JWT tenant is not one allowed for this issuer")
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
        if not client.jwks_urls:
            assert client.jwks is not None
            return client.jwks
        if jku is not None and jku not in client.jwks_urls:
            raise AuthError("JWT jku is not a JWK Set URL allowlisted for this issuer")
        urls = (jku,) if jku is not None else client.jwks_urls
        keys: list[Any] = []
        for url in urls:
            keys += (await self._keyset(client, url, kid)).keys
        return KeySet(keys)

    async def _keyset(self, client: TrustedClient, url: str, kid: Any) -> KeySet:
        now = time.monotonic()
        got = client.fetched.get(url)
        if got is not None:
            at, ks = got
            missing = kid is not None and not any(k.kid == kid for k in ks.keys)
            if now - at <= JWKS_TTL_S and not (missing and now - at > 10):
                return ks
        ks = await self._fetch(url)
        client.fetched[url] = (time.monotonic(), ks)
        return ks

    async def _fetch(self, url: str) -> KeySet:
        http = self._http or httpx.AsyncClient(timeout=3.0)
        try:
            resp = await http.get(url, headers={"Accept": "application/json"})
            resp.raise_for_status()
            if len(resp.content) > 1024 * 1024:
                raise ValueError("JWK Set larger than 1 MiB")
            return public_keyset(resp.json(), f"JWK Set at {url}")
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not fetch JWK Set %s: %s", url, type(exc).__name__)
            raise AuthError("could not fetch the issuer's JWK Set") from None
        finally:
            if self._http is None:
                await http.aclose()
