"""Fetch what the prefetch templates describe from the EHR's FHIR server, within a deadline.

Pages follow ``Bundle.link[next]`` only on the same server (the bearer token must never go
elsewhere) and up to a page limit; a slow server yields a partial result, not a hung hook.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import msgspec

log = logging.getLogger("msc_screen.server.fhir")

_TOKEN = re.compile(r"\{\{\s*context\.(\w+)\s*\}\}")


@dataclass
class FetchResult:
    payloads: dict[str, list[bytes]] = field(default_factory=dict)  # key -> raw JSON pages
    failed: dict[str, str] = field(default_factory=dict)  # key -> short reason (no PHI)
    truncated: list[str] = field(default_factory=list)


def render_template(template: str, context: dict[str, Any]) -> str | None:
    """Fill ``{{context.x}}`` tokens; None when a token has no usable value."""
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        v = context.get(m.group(1))
        if not isinstance(v, str | int) or isinstance(v, bool) or str(v) == "":
            missing = True
            return ""
        return quote(str(v), safe="")  # an id must not add query parameters or path parts

    out = _TOKEN.sub(sub, template)
    return None if missing else out


def _same_server(url: str, base: str) -> bool:
    u, b = urlsplit(url), urlsplit(base)
    return (u.scheme, u.netloc) == (b.scheme, b.netloc) and u.path.startswith(b.path.rstrip("/"))


async def _fetch_one(client: httpx.AsyncClient, base: str, query: str, headers: dict[str, str],
                     page_limit: int, key: str, out: FetchResult) -> None:
    url: str | None = f"{base.rstrip('/')}/{query.lstrip('/')}"
    pages: list[bytes] = []
    n = 0
    while url is not None:
        if n >= page_limit:
            out.truncated.append(key)
            break
        resp = await client.get(url, headers=headers)
        n += 1
        if resp.status_code == 404:
            break
        if resp.status_code >= 400:
            out.failed[key] = f"HTTP {resp.status_code}"
            return
        body = resp.content
        pages.append(body)
        url = None
        try:  # only the paging links: the reader decodes each page itself, once
            head = _PAGE.decode(body)
        except msgspec.ValidationError:
            continue  # not a Bundle: no next page; the reader says what is wrong with it
        except msgspec.DecodeError:
            out.failed[key] = "response is not JSON"
            return
        if head.resourceType == "Bundle":
            for link in head.link or ():
                if link.relation == "next" and link.url and _same_server(link.url, base):
                    url = link.url
    if pages:
        out.payloads[key] = pages


class _Link(msgspec.Struct):
    relation: str | None = None
    url: str | None = None


class _Page(msgspec.Struct):
    resourceType: str | None = None
    link: list[_Link] | None = None


_PAGE = msgspec.json.Decoder(_Page)


async def fetch_all(client: httpx.AsyncClient, base: str, token: str | None,
                    queries: dict[str, str], *, deadline_s: float,
                    page_limit: int) -> FetchResult:
    """Run every query concurrently; whatever is unfinished at the deadline is reported as
    failed ("timeout") and the rest is returned."""
    out = FetchResult()
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    tasks = {k: asyncio.ensure_future(_fetch_one(client, base, q, headers, page_limit, k, out))
             for k, q in queries.items()}
    if not tasks:
        return out
    _done, pending = await asyncio.wait(tasks.values(), timeout=deadline_s)
    for t in pending:
        t.cancel()
    for k, t in tasks.items():
        if t in pending:
            out.failed[k] = "timeout"
            out.payloads.pop(k, None)
        elif t.exception() is not None:
            exc = t.exception()
            out.failed[k] = type(exc).__name__
            log.warning("FHIR fetch for %s failed: %s", k, type(exc).__name__)
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return out
