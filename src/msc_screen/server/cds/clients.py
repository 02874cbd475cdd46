"""Trusted CDS clients: who may call, with which keys, for which tenants, fetching from where.

A client entry (the clients file is a JSON list of them) names an ``iss`` and its keys, inline
(``jwks``) or by one or more JWK Set URLs (``jwks_url`` / ``jwks_urls``). Oracle Health signs
for every site with one ``iss`` and tells sites apart by the ``tenant`` claim, so an entry may
list ``tenants`` (the token's ``tenant`` must be one of them) and several entries may share an
``iss`` with different tenants. ``fhir_servers`` lists the FHIR base URLs the client may send
as ``fhirServer``: the bearer token goes to those and nowhere else. ``max_lifetime_s`` caps
``exp - iat`` (default one hour; Epic's tokens live 5 minutes, 15 at most).

Keys whose private half is published (the CDS Hooks specification's example key, the public
sandbox's key) are named in ``published_keys.json``; trusting one draws a warning at start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .fhir_base import FhirBase, is_loopback_host

DEFAULT_MAX_LIFETIME_S = 3600
PUBLISHED_KEYS_FILE = Path(__file__).with_name("published_keys.json")
_PRIVATE_PARTS = ("d", "p", "q", "dp", "dq", "qi", "k")
_KNOWN = frozenset({"iss", "jwks", "jwks_url", "jwks_urls", "tenants", "fhir_servers",
                    "max_lifetime_s", "name"})


@dataclass
class TrustedClient:
    iss: str
    jwks: KeySet | None = None
    jwks_urls: tuple[str, ...] = ()
    tenants: frozenset[str] | None = None  # None: the token's tenant is not checked
    fhir_servers: tuple[FhirBase, ...] = ()
    max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S
    name: str | None = None  # a label for the audit and the report (e.g. "Epic PRD")
    # JWK Set URL -> (monotonic time fetched, keys)
    fetched: dict[str, tuple[float, KeySet]] = field(default_factory=dict, repr=False)

    @property
    def jwks_url(self) -> str | None:
        """The first JWK Set URL (one-URL clients, as before)."""
        return self.jwks_urls[0] if self.jwks_urls else None

    def label(self) -> str:
        return self.name or self.iss


Clients = dict[str, list[TrustedClient]]


def _https_url(value: Any, where: str, what: str) -> str:
    """A JWK Set URL: https (keys fetched over plain http could be anyone's), or http to a
    loopback address (tests, a local EHR simulator)."""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(f"{where}: {what!r} must be an https URL")
    if value.startswith("http://"):
        try:
            host = FhirBase.parse(value).host
        except ValueError:
            host = ""
        if not is_loopback_host(host):
            raise ValueError(f"{where}: {what!r} must be https (plain http only for a "
                             "loopback address)")
    return value


def public_keyset(value: Any, where: str) -> KeySet:
    """A JWK Set with private parts dropped; symmetric keys refused."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise ValueError(f"{where}: 'jwks' must be a JWK Set {{\"keys\": [...]}}")
    keys = []
    for k in value["keys"]:
        if not isinstance(k, dict) or k.get("kty") == "oct":
            raise ValueError(f"{where}: symmetric ('oct') keys are not accepted")
        keys.append({n: v for n, v in k.items() if n not in _PRIVATE_PARTS})
    try:
        return KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}: invalid JWK Set ({exc})") from None


def _entry(e: Any, where: str) -> TrustedClient:
    if not isinstance(e, dict) or not isinstance(e.get("iss"), str) or not e["iss"]:
        raise ValueError(f"{where}: needs a string 'iss'")
    unknown = sorted(set(e) - _KNOWN)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (known: "
                         f"{', '.join(sorted(_KNOWN))})")
    has_urls = "jwks_url" in e or "jwks_urls" in e
    if ("jwks" in e) == has_urls or ("jwks_url" in e and "jwks_urls" in e):
        raise ValueError(f"{where}: give exactly one of 'jwks', 'jwks_url' or 'jwks_urls'")
    client = TrustedClient(iss=e["iss"])
    if "jwks" in e:
        client.jwks = public_keyset(e["jwks"], where)
    else:
        urls = [e["jwks_url"]] if "jwks_url" in e else e["jwks_urls"]
        if not isinstance(urls, list) or not urls:
            raise ValueError(f"{where}: 'jwks_urls' must be a non-empty list of URLs")
        client.jwks_urls = tuple(_https_url(u, where, "jwks_url") for u in urls)
    if "tenants" in e:
        t = e["tenants"]
        if not isinstance(t, list) or not t or not all(isinstance(x, str) and x for x in t):
            raise ValueError(f"{where}: 'tenants' must be a non-empty list of strings")
        client.tenants = frozenset(t)
    servers = e.get("fhir_servers", [])
    if not isinstance(servers, list):
        raise ValueError(f"{where}: 'fhir_servers' must be a list of FHIR base URLs")
    client.fhir_servers = tuple(FhirBase.parse_listed(s, f"{where}.fhir_servers[{i}]")
                                for i, s in enumerate(servers))
    life = e.get("max_lifetime_s", DEFAULT_MAX_LIFETIME_S)
    if not isinstance(life, int) or isinstance(life, bool) or life <= 0:
        raise ValueError(f"{where}: 'max_lifetime_s' must be a positive integer (seconds)")
    client.max_lifetime_s = life
    name = e.get("name")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"{where}: 'name' must be a string")
    client.name = name
    return client


def load_clients(source: str | None) -> Clients:
    """Trusted clients from a JSON file path or inline JSON, by ``iss``. Raises ValueError
    naming the entry that is wrong."""
    if not source:
        return {}
    text = source if source.lstrip().startswith("[") else Path(source).read_text("utf-8")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"CDS clients: not valid JSON ({exc})") from None
    if not isinstance(entries, list):
        raise ValueError("CDS clients: expected a JSON list of {iss, jwks | jwks_url(s)}")
    clients: Clients = {}
    for i, e in enumerate(entries):
        c = _entry(e, f"CDS clients[{i}]")
        same = clients.setdefault(c.iss, [])
        if any(o.tenants is None or c.tenants is None or o.tenants & c.tenants for o in same):
            raise ValueError(f"CDS clients[{i}]: another entry for iss {c.iss!r} already "
                             "covers its tenants; entries sharing an iss must list "
                             "distinct 'tenants'")
        same.append(c)
    return clients


def published_key_warnings(clients: Clients) -> list[str]:
    """One line per trusted key or JWK Set URL whose private half is public."""
    data = json.loads(PUBLISHED_KEYS_FILE.read_text("utf-8"))
    thumbs = {k["thumbprint"]: k["name"] for k in data["keys"]}
    urls = {u["url"]: u["name"] for u in data["jwks_urls"]}
    out = []
    for iss, entries in clients.items():
        for c in entries:
            for key in c.jwks.keys if c.jwks is not None else ():
                name = thumbs.get(key.thumbprint())
                if name:
                    out.append(f"CDS client {iss!r} trusts {name} (kid {key.kid!r}); its "
                               "private key is published, so anyone can sign as this client")
            for u in c.jwks_urls:
                if u in urls:
                    out.append(f"CDS client {iss!r} trusts {urls[u]} ({u}); its private key "
                               "is published, so anyone can sign as this client")
    return out
