"""Fetch what the prefetch templates describe from the EHR's FHIR server, within a deadline.

Pages follow ``Bundle.link[next]`` only on the same server (the bearer token must never go
elsewhere) and up to a page limit; a slow server yields a partial result, not a hung hook.
Whatever ends a key's fetch early (an HTTP error, a 404, a ``next`` link to another server, the
page limit, the deadline) is that key's ``problem``: its kind of data is then incomplete, and
the pages read before it are still screened.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from .fhir_base import same_server

log = logging.getLogger("msc_screen.server.fhir")

# A page as sent, and after Content-Encoding gzip (the clinic profile of msc_screen.limits:
# MSC_SCREEN_LIMIT_PAGE_BYTES / _PAGE_DECOMPRESSED_BYTES override them when that module is there).
PAGE_BYTES = 16 * 1024 * 1024
PAGE_DECOMPRESSED_BYTES = 64 * 1024 * 1024
_TOKEN = re.compile(r"\{\{\s*context\.(\w+)\s*\}\}")


@dataclass
class FetchJob:
    """What to fetch for one prefetch key: a query relative to ``fhirServer``, or an absolute
    URL on it (the ``next`` page of a paged prefetch), with the pages already read."""

    url: str
    pages_done: int = 0


@dataclass
class KeyFetch:
    pages: list[bytes] = field(default_factory=list)  # raw JSON pages read, in order
    problem: str | None = None  # why the key is incomplete (short, no PHI), None when whole
    outcome: str = "ok"  # for metrics: ok, error, timeout, truncated, not-followed


@dataclass
class FetchResult:
    keys: dict[str, KeyFetch] = field(default_factory=dict)


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


async def _fetch_one(client: httpx.AsyncClient, base: str, job: FetchJob,
                     headers: dict[str, str], page_limit: int, out: KeyFetch) -> None:
    """Pages are added to ``out`` as they come, so a deadline keeps what was read."""
    url: str | None = (job.url if job.url.startswith(("https://", "http://"))
                       else f"{base.rstrip('/')}/{job.url.lstrip('/')}")
    n = job.pages_done
    while url is not None:
        if not same_server(url, base):  # the bearer token never leaves fhirServer
            out.problem, out.outcome = "next page on another server not followed", "not-followed"
            return
        if n >= page_limit:
            out.problem = f"more pages than the page limit ({page_limit}); the rest was not read"
            out.outcome = "truncated"
            return
        status, body, problem = await read_page(client, url, headers)
        n += 1
        if problem is not None:
            out.problem, out.outcome = problem, "error"
            return
        if status >= 300:
            what = {404: " (not found)", 401: " (unauthorized)", 403: " (forbidden)"}.get(
                status, " (redirect not followed)" if status < 400 else "")
            out.problem, out.outcome = f"HTTP {status}{what}", "error"
            return
        url = None
        try:  # only the paging links: the reader decodes each page itself, once
            head = _PAGE.decode(body)
        except msgspec.ValidationError:
            out.pages.append(body)  # not a Bundle: no next page; the reader says what it is
            continue
        except msgspec.DecodeError:
            out.problem, out.outcome = "the answer is not JSON", "error"
            return
        out.pages.append(body)
        if head.resourceType == "Bundle":
            for link in head.link or ():
                if link.relation == "next" and link.url:
                    url = link.url


def page_limits() -> tuple[int, int]:
    """(bytes as sent, bytes decoded) for one fetched page."""
    try:
        from ... import limits  # the hardening work's one limits module, where present

        lim = limits.profile("clinic")
    except (ImportError, AttributeError, KeyError, ValueError):
        return PAGE_BYTES, PAGE_DECOMPRESSED_BYTES
    return (int(getattr(lim, "page_bytes", PAGE_BYTES)),
            int(getattr(lim, "page_decompressed_bytes", PAGE_DECOMPRESSED_BYTES)))


def _human(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


async def read_page(client: httpx.AsyncClient, url: str, headers: dict[str, str]
                    ) -> tuple[int, bytes, str | None]:
    """(status, decoded body, problem) of one GET, read as a stream against the page limits:
    a page past them (as sent, or after gzip) stops being read at the limit, and says so."""
    raw_cap, cap = page_limits()
    async with client.stream("GET", url, headers=headers) as resp:
        if resp.status_code >= 300:
            return resp.status_code, b"", None
        enc = resp.headers.get("content-encoding", "identity").strip().lower()
        if enc not in ("identity", "gzip", "x-gzip"):
            return resp.status_code, b"", f"unsupported Content-Encoding {enc[:20]!r}"
        gz = zlib.decompressobj(wbits=31) if enc != "identity" else None
        parts: list[bytes] = []
        got = total = 0
        async for chunk in resp.aiter_raw():
            got += len(chunk)
            if got > raw_cap:
                return resp.status_code, b"", (f"page larger than {_human(raw_cap)} "
                                               "(MSC_SCREEN_LIMIT_PAGE_BYTES); not read")
            while chunk:
                try:
                    piece = chunk if gz is None else gz.decompress(chunk, cap - total + 1)
                except zlib.error:
                    return resp.status_code, b"", "corrupt gzip data"
                chunk = gz.unconsumed_tail if gz is not None else b""
                total += len(piece)
                if total > cap:
                    return resp.status_code, b"", (
                        f"page larger than {_human(cap)} once decompressed "
                        "(MSC_SCREEN_LIMIT_PAGE_DECOMPRESSED_BYTES); not read")
                parts.append(piece)
                if gz is not None and gz.eof:
                    break
        return resp.status_code, b"".join(parts), None


class _Link(msgspec.Struct):
    relation: str | None = None
    url: str | None = None


class _Page(msgspec.Struct):
    resourceType: str | None = None
    link: list[_Link] | None = None


_PAGE = msgspec.json.Decoder(_Page)


async def fetch_all(client: httpx.AsyncClient, base: str, token: str | None,
                    jobs: dict[str, FetchJob], *, deadline_s: float,
                    page_limit: int) -> FetchResult:
    """Run every key's fetch concurrently; what is unfinished at the deadline keeps the pages
    it read and is reported as a timeout."""
    out = FetchResult({k: KeyFetch() for k in jobs})
    headers = {"Accept": "application/fhir+json", "Accept-Encoding": "gzip"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    tasks = {k: asyncio.ensure_future(_fetch_one(client, base, job, headers, page_limit,
                                                 out.keys[k]))
             for k, job in jobs.items()}
    if not tasks:
        return out
    _done, pending = await asyncio.wait(tasks.values(), timeout=deadline_s)
    for t in pending:
        t.cancel()
    for k, t in tasks.items():
        kf = out.keys[k]
        if t in pending:
            kf.problem = f"timeout: no complete answer within {deadline_s:g} s"
            kf.outcome = "timeout"
        elif t.exception() is not None:
            exc = t.exception()
            if isinstance(exc, httpx.TimeoutException):
                kf.problem, kf.outcome = "timeout", "timeout"
            elif isinstance(exc, httpx.ConnectError):
                kf.problem, kf.outcome = "could not connect", "error"
            else:
                kf.problem, kf.outcome = f"fetch failed ({type(exc).__name__})", "error"
            log.warning("FHIR fetch for %s failed: %s", k, type(exc).__name__)
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return out
