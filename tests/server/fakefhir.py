"""A small FHIR server for tests: serves one Synthea patient with read, search and paging.

Synthea transaction bundles link resources by ``urn:uuid``; a real server answers with
``Type/id`` references, so they are rewritten once when the server is built.
"""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def load_synthea(path: Path) -> list[dict[str, Any]]:
    """Resources of a Synthea bundle with urn:uuid references rewritten to Type/id."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    bundle = orjson.loads(data)
    for e in bundle["entry"]:
        r = e["resource"]
        data = data.replace(f'"{e["fullUrl"]}"'.encode(), f'"{r["resourceType"]}/{r["id"]}"'.encode())
    return [e["resource"] for e in orjson.loads(data)["entry"]]


def _patient_ref(r: dict[str, Any]) -> str | None:
    for f in ("subject", "patient"):
        v = r.get(f)
        if isinstance(v, dict):
            return v.get("reference")
    return None


def _codes(cc: Any) -> set[tuple[str | None, str | None]]:
    out = set()
    for c in cc if isinstance(cc, list) else [cc]:
        if isinstance(c, dict):
            for cd in c.get("coding") or ():
                out.add((cd.get("system"), cd.get("code")))
    return out


def search(resources: list[dict[str, Any]], rtype: str, params: dict[str, str]
           ) -> list[dict[str, Any]]:
    hits = [r for r in resources if r["resourceType"] == rtype]
    if "patient" in params:
        want = params["patient"]
        want = want if "/" in want else f"Patient/{want}"
        hits = [r for r in hits if _patient_ref(r) == want]
    if "category" in params:
        cats = set(params["category"].split(","))
        hits = [r for r in hits if any(c in cats for _, c in _codes(r.get("category")))]
    if "code" in params:
        wanted = set()
        for tok in params["code"].split(","):
            sys, _, code = tok.rpartition("|")
            wanted.add((sys or None, code))
        hits = [r for r in hits if any((s, c) in wanted or (None, c) in wanted
                                       for s, c in _codes(r.get("code")))]
    return hits


def make_app(resources: list[dict[str, Any]], page_size: int = 100) -> Starlette:
    """``app.state.gzip`` sends answers with Content-Encoding gzip; ``app.state.delay`` (seconds) slows every answer; ``app.state.log`` records calls;
    ``app.state.answers`` maps a resource type (or ``"*"``) to a canned (status, JSON body)
    answer for every request on it; ``app.state.next_base`` puts ``next`` links on another
    base URL (another server)."""

    async def handle(request: Request) -> Response:
        app.state.log.append((request.url.path, str(request.url.query),
                              request.headers.get("authorization")))
        resp = await answer(request)
        if app.state.gzip and "gzip" in request.headers.get("accept-encoding", ""):
            body = app.state.gzip(resp.body) if callable(app.state.gzip) else gzip.compress(
                resp.body)
            return Response(body, status_code=resp.status_code, media_type=resp.media_type,
                            headers={"Content-Encoding": "gzip"})
        return resp

    async def answer(request: Request) -> Response:
        if app.state.delay:
            await asyncio.sleep(app.state.delay)
        parts = request.path_params["path"].strip("/").split("/")
        canned = app.state.answers.get(parts[0], app.state.answers.get("*"))
        if canned is not None:
            status, body = canned
            return Response(orjson.dumps(body), status_code=status,
                            media_type="application/fhir+json")
        if len(parts) == 2:
            for r in resources:
                if r["resourceType"] == parts[0] and r.get("id") == parts[1]:
                    return Response(orjson.dumps(r), media_type="application/fhir+json")
            return Response(orjson.dumps({"resourceType": "OperationOutcome", "issue": []}),
                            status_code=404, media_type="application/fhir+json")
        params = {k: v for k, v in request.query_params.items()}
        offset = int(params.pop("_offset", "0"))
        count = min(int(params.pop("_count", str(page_size))), page_size)  # a server's cap
        hits = search(resources, parts[0], params)
        page = hits[offset: offset + count]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle", "type": "searchset", "total": len(hits),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": [{"fullUrl": f"{request.base_url}fhir/{r['resourceType']}/{r['id']}",
                       "resource": r, "search": {"mode": "match"}} for r in page],
        }
        if offset + count < len(hits):
            nxt = {**params, "_offset": str(offset + count), "_count": str(count)}
            base = str(request.url).split("?")[0]
            if app.state.next_base:
                base = app.state.next_base.rstrip("/") + "/" + parts[0]
            bundle["link"].append({"relation": "next", "url": f"{base}?{urlencode(nxt)}"})
        return Response(orjson.dumps(bundle), media_type="application/fhir+json")

    app = Starlette(routes=[Route("/fhir/{path:path}", handle)])
    app.state.delay = 0.0
    app.state.log = []
    app.state.answers = {}
    app.state.next_base = None
    app.state.gzip = None  # True: gzip every answer; a function: bytes -> the gzip body sent
    return app


def reset(app: Starlette) -> None:
    app.state.gzip = None
    app.state.delay = 0.0
    app.state.log.clear()
    app.state.answers = {}
    app.state.next_base = None


def prefetch_for(resources: list[dict[str, Any]], patient_id: str,
                 templates: dict[str, str]) -> dict[str, Any]:
    """What an EHR would prefetch for each template (all pages in one searchset Bundle)."""
    out: dict[str, Any] = {}
    for key, tmpl in templates.items():
        q = tmpl.replace("{{context.patientId}}", patient_id)
        path, _, query = q.partition("?")
        parts = path.split("/")
        if len(parts) == 2:
            out[key] = next((r for r in resources if r["resourceType"] == parts[0]
                             and r.get("id") == parts[1]), None)
            continue
        params = dict(p.split("=", 1) for p in query.split("&") if p)
        hits = search(resources, parts[0], params)
        out[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                    "entry": [{"resource": r} for r in hits]}
    return out


def paged_prefetch(resources: list[dict[str, Any]], patient_id: str, templates: dict[str, str],
                   next_base: str, page_size: int) -> dict[str, Any]:
    """``prefetch_for`` as an EHR that sends only each search's first page, with a ``next``
    link on ``next_base`` in the fake server's own paging form."""
    out = prefetch_for(resources, patient_id, templates)
    for key, tmpl in templates.items():
        value = out[key]
        if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
            continue
        entries = value["entry"]
        if len(entries) <= page_size:
            continue
        value["entry"] = entries[:page_size]
        path, _, query = tmpl.replace("{{context.patientId}}", patient_id).partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if p)
        params.update({"_offset": str(page_size), "_count": str(page_size)})
        value["link"] = [{"relation": "next",
                          "url": f"{next_base.rstrip('/')}/{path}?{urlencode(params)}"}]
    return out
