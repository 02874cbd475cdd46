"""CDS Hooks routes: ``/cds-services`` discovery, service calls and feedback."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from ..problems import ApiProblem, JsonResponse
from .service import CdsService

router = APIRouter(tags=["cds-hooks"])

MAX_BODY = 64 * 1024 * 1024

_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object"}}}}}
_CALL_DOC: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["hook", "hookInstance", "context"],
        "properties": {"hook": {"type": "string"}, "hookInstance": {"type": "string"},
                       "context": {"type": "object"}, "fhirServer": {"type": "string"},
                       "fhirAuthorization": {"type": "object"},
                       "prefetch": {"type": "object"}}}}}},
    "responses": {"412": {"description": "No usable data: no prefetch and no fhirServer, "
                                          "or every prefetch key and FHIR query failed"},
                  "401": {"description": "Missing or invalid client JWT"}},
}


def _cds(request: Request) -> CdsService:
    svc: CdsService = request.app.state.cds
    return svc


def _audience(request: Request) -> str:
    base: str | None = request.app.state.settings.base_url
    if base:
        return base.rstrip("/") + request.url.path
    return str(request.url.replace(query=None, fragment=None))


def _rules_url(request: Request) -> str:
    base: str | None = request.app.state.settings.base_url
    return (base.rstrip("/") if base else str(request.base_url).rstrip("/")) + "/rules"


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiProblem(413, "request body too large", code="too-costly")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiProblem(413, "request body too large", code="too-costly")
    return raw


@router.get("/cds-services", response_class=JsonResponse)
async def discovery(request: Request) -> JsonResponse:
    """CDS Hooks discovery: the services offered and their prefetch templates."""
    cds = _cds(request)
    await cds.authenticate(request.headers.get("authorization"), _audience(request))
    return JsonResponse(cds.discovery())


@router.post("/cds-services/{service_id}", response_class=JsonResponse, openapi_extra=_CALL_DOC)
async def call_service(request: Request, service_id: str) -> JsonResponse:
    """Call a CDS service: returns `{"cards": [...]}` (empty when nothing is found)."""
    cds = _cds(request)
    caller = await cds.authenticate(request.headers.get("authorization"), _audience(request))
    audit = cds.audit_for(service_id, caller)
    t0 = time.perf_counter()
    try:
        result = await cds.call(service_id, await _body(request), _rules_url(request), caller,
                                audit)
    except ApiProblem as exc:
        audit.status = exc.status
        raise
    else:
        audit.cards = result["cards"]
    finally:
        audit.duration_ms = round((time.perf_counter() - t0) * 1000, 2)
        if service_id in cds.services:
            audit.record(cds.db)
    metrics = request.app.state.metrics
    for card in result["cards"]:
        metrics.cards.labels(service_id if service_id in cds.services else "?",
                             card["indicator"]).inc()
    return JsonResponse(result)


@router.post("/cds-services/{service_id}/feedback", response_class=JsonResponse,
             openapi_extra=_BODY)
async def feedback(request: Request, service_id: str) -> JsonResponse:
    """Store the EHR's feedback on cards (accepted / overridden)."""
    cds = _cds(request)
    caller = await cds.authenticate(request.headers.get("authorization"), _audience(request))
    n = cds.feedback(service_id, await _body(request), caller.iss if caller else None)
    return JsonResponse({"stored": n})
