"""FHIR base URLs compared as URLs, not strings, and which ``fhirServer`` a caller may name.

``https://ehr/fhir`` contains ``https://ehr:443/fhir/Patient/1`` but not ``https://ehr/fhir-evil``
nor ``http://ehr/fhir`` nor ``https://ehr.evil/fhir``: scheme, host, port and whole path
segments are compared. A ``fhirServer`` is where the service sends the EHR's bearer token and
what it reads the patient from, so it must be https and one of the calling client's
``fhir_servers``; plain http only to a loopback address the entry lists. Without
authentication (``--insecure-no-auth``, loopback only) the service accepts any https server on a
public address, or a loopback one; private and link-local addresses are refused, so a caller
cannot use the service to probe the network it runs in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_DEFAULT_PORT = {"https": 443, "http": 80}
_DNS_TTL_S = 60.0
_dns_cache: dict[str, tuple[float, list[str]]] = {}


class FhirServerRefused(ValueError):
    """Why a ``fhirServer`` is not accepted; safe to return to the caller."""


@dataclass(frozen=True)
class FhirBase:
    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]
    url: str

    @classmethod
    def parse(cls, url: str) -> FhirBase:
        """Raises FhirServerRefused when ``url`` is not an absolute http(s) URL."""
        try:
            u = urlsplit(url)
            port = u.port
        except ValueError:
            raise FhirServerRefused("not a valid URL") from None
        scheme = u.scheme.lower()
        if scheme not in _DEFAULT_PORT or not u.hostname:
            raise FhirServerRefused("must be an absolute https URL")
        if u.username is not None or u.password is not None:
            raise FhirServerRefused("must not carry a user name or password")
        segs = tuple(unquote(s) for s in u.path.split("/") if s)
        if any(s in (".", "..") for s in segs):
            raise FhirServerRefused("must not contain '.' or '..' path segments")
        return cls(scheme, u.hostname.lower().rstrip("."), port or _DEFAULT_PORT[scheme], segs,
                   url)

    @classmethod
    def parse_listed(cls, value: object, where: str) -> FhirBase:
        """A base URL in a client entry: https, or http to a loopback address."""
        if not isinstance(value, str):
            raise ValueError(f"{where}: must be a FHIR base URL string")
        try:
            base = cls.parse(value)
        except FhirServerRefused as exc:
            raise ValueError(f"{where}: {exc}") from None
        if base.scheme == "http" and not is_loopback_host(base.host):
            raise ValueError(f"{where}: plain http is accepted only for a loopback address")
        return base

    def contains(self, other: FhirBase | str) -> bool:
        """``other`` is this base or a URL under it (same scheme, host, port; the path starts
        with this base's whole segments)."""
        if isinstance(other, str):
            try:
                other = FhirBase.parse(other)
            except FhirServerRefused:
                return False
        return ((other.scheme, other.host, other.port) == (self.scheme, self.host, self.port)
                and other.segments[:len(self.segments)] == self.segments)


def same_server(url: str, base: str) -> bool:
    """``url`` is on the FHIR server ``base`` (see ``FhirBase.contains``)."""
    try:
        return FhirBase.parse(base).contains(url)
    except FhirServerRefused:
        return False


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    ip = _ip(host)
    return host == "localhost" or (ip is not None and ip.is_loopback)


def _non_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return "private"
    return None


async def _resolve(host: str) -> list[str]:
    hit = _dns_cache.get(host)
    now = time.monotonic()
    if hit is not None and now - hit[0] < _DNS_TTL_S:
        return hit[1]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM),
                                       timeout=2.0)
    except (OSError, TimeoutError):
        raise FhirServerRefused("its host name does not resolve") from None
    addrs = sorted({str(i[4][0]) for i in infos})
    if len(_dns_cache) > 1000:
        _dns_cache.clear()
    _dns_cache[host] = (now, addrs)
    return addrs


async def check_fhir_server(url: str, allowed: tuple[FhirBase, ...] | None) -> FhirBase:
    """The ``fhirServer`` as a base, or FhirServerRefused with the reason. ``allowed``: the
    calling client's ``fhir_servers``; None when calls are not authenticated."""
    base = FhirBase.parse(url)
    if allowed is not None:
        if not allowed:
            raise FhirServerRefused("the calling client's entry lists no fhir_servers; add "
                                    "this FHIR base URL to its 'fhir_servers'")
        if not any(a.contains(base) for a in allowed):
            raise FhirServerRefused("is not one of the FHIR servers listed for the calling "
                                    "client ('fhir_servers' in its entry)")
        return base  # listed by the operator: a private or loopback address is intended
    if is_loopback_host(base.host):
        return base  # development without authentication runs on loopback only
    if base.scheme != "https":
        raise FhirServerRefused("must be https (plain http only to a listed loopback address)")
    ip = _ip(base.host)
    addrs = [base.host.strip("[]")] if ip is not None else await _resolve(base.host)
    for a in addrs:
        addr = _ip(a)
        why = _non_public(addr) if addr is not None else "unknown"
        if why is not None:
            raise FhirServerRefused(f"resolves to a {why} address, which is refused unless "
                                    "a client entry lists it in 'fhir_servers'")
    return base
