"""US Core DocumentReferences whose attachment is a ``url`` (a Binary on the EHR's FHIR
server): read them from ``fhirServer`` so the note is screened, not just named in a warning.

Only URLs on ``fhirServer`` are read (the bearer token goes nowhere else), at most
``MAX_ATTACHMENTS`` per call, within what is left of the fetch deadline, each page bounded as
any other. An attachment that cannot be read keeps its warning ("not inline (by URL)")."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import msgspec

from ...fhir.structs import DocumentReference, FAttachment
from .fhir_base import same_server
from .fhir_fetch import FetchJob, fetch_all

MAX_ATTACHMENTS = 20


class _Binary(msgspec.Struct):
    resourceType: str | None = None
    contentType: str | None = None
    data: str | None = None


_BINARY = msgspec.json.Decoder(_Binary)


def _absolute(url: str, base: str) -> str | None:
    if url.startswith(("https://", "http://")):
        return url if same_server(url, base) else None
    if url.startswith("Binary/") and "/" not in url[len("Binary/"):]:
        return f"{base.rstrip('/')}/{url}"
    return None


def by_url(resources: list[Any], base: str) -> dict[str, list[FAttachment]]:
    """The attachments to read, by absolute URL (several notes may share one Binary)."""
    out: dict[str, list[FAttachment]] = {}
    for res in resources:
        if type(res) is not DocumentReference:
            continue
        for c in res.content or ():
            att = c.attachment
            if att is None or att.data is not None or not att.url:
                continue
            url = _absolute(att.url, base)
            if url is not None and (url in out or len(out) < MAX_ATTACHMENTS):
                out.setdefault(url, []).append(att)
    return out


async def inline(client: httpx.AsyncClient, base: str, token: str | None,
                 resources: list[Any], deadline: float, page_limit: int = 1) -> int:
    """Fill in ``data`` (and ``contentType``) of attachments read from ``base``; how many
    were read. ``deadline``: a ``time.monotonic()`` value."""
    wanted = by_url(resources, base)
    left = deadline - time.monotonic()
    if not wanted or left <= 0.05:
        return 0
    jobs = {url: FetchJob(url) for url in wanted}
    got = await fetch_all(client, base, token, jobs, deadline_s=left, page_limit=page_limit)
    n = 0
    for url, kf in got.keys.items():
        if kf.problem is not None or not kf.pages:
            continue
        try:
            b = _BINARY.decode(kf.pages[0])
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if b.resourceType != "Binary" or not isinstance(b.data, str):
            continue
        try:
            base64.b64decode(b.data, validate=True)
        except ValueError:
            continue
        for att in wanted[url]:
            att.data = b.data
            att.contentType = att.contentType or b.contentType
            n += 1
    return n
