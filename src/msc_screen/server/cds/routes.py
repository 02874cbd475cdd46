"""CDS Hooks routes: ``/cds-services`` discovery, service calls and feedback."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPBearer

from ..problems import ApiProblem, JsonResponse
from .service import CdsService

MAX_BODY = 64 * 1024 * 1024

_OUTCOME = {"application/fhir+json": {"schema": {
    "type": "object", "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"},
                   "issue": {"type": "array", "items": {
                       "type": "object", "required": ["severity", "code"],
                       "properties": {"severity": {"type": "string"},
                                      "code": {"type": "string"},
                                      "diagnostics": {"type": "string"},
                                      "expression": {"type": "array",
                                                     "items": {"type": "string"}}}}}}}}}


def _problem(what: str) -> dict[str, Any]:
    return {"description": what + " (an OperationOutcome naming the reason)",
            "content": _OUTCOME}


_AUTH = {"401": _problem("Missing or invalid client JWT: signature, alg, typ, iss, tenant, "
                         "aud, exp/iat/nbf, lifetime or a replayed jti; WWW-Authenticate: "
                         "Bearer")}
_CARDS = {"type": "object", "required": ["cards"], "properties": {
    "cards": {"type": "array", "items": {"type": "object", "required": [
        "uuid", "summary", "indicator", "source"]}},
    "systemActions": {"type": "array", "items": {"type": "object"}}}}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["feedback"], "properties": {"feedback": {
        "type": "array", "items": {"type": "object", "required": ["card", "outcome"]}}}}}}},
    "responses": {**_AUTH, "400": _problem("Malformed feedback"),
                  "404": _problem("No such CDS service"),
                  "413": _problem("Request body over 64 MiB")}}
_CALL_DOC: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["hook", "hookInstance", "context"],
        "properties": {"hook": {"type": "string"}, "hookInstance": {"type": "string"},
                       "context": {"type": "object"},
                       "fhirServer": {"type": "string", "format": "uri",
                                      "description": "https, and one of the calling "
                                      "client's fhir_servers"},
                       "fhirAuthorization": {"type": "object"},
                       "prefetch": {"type": "object"}}}}}},
    "responses": {
        "200": {"description": "Cards (an empty list when nothing needs a clinician)",
                "content": {"application/json": {"schema": _CARDS}}},
        **_AUTH,
        "400": _problem("Bad request: malformed JSON, wrong hook, no context.patientId or "
                        "draftOrders, or a fhirServer refused (not https, not listed for the "
                        "client, a private or link-local address)"),
        "404": _problem("No such CDS service"),
        "412": _problem("No usable data: no prefetch and no fhirServer, or every prefetch "
                        "key and FHIR query failed"),
        "413": _problem("Request body over 64 MiB"),
    },
}
_DISCOVERY_DOC: dict[str, Any] = {"responses": {**_AUTH}}
# Declares the bearer scheme in the OpenAPI document; the JWT itself is checked by the
# service (auth.py), which also answers the 401 when the header is missing.
_bearer = HTTPBearer(auto_error=False, scheme_name="cdsClientJwt", bearerFormat="JWT",
                     description="A JWT signed by the EHR (CDS Hooks 2.0 security): ES384 or "
                     "RS384, typ JWT, aud = the URL called, a jti used once")


router = APIRouter(tags=["cds-hooks"], dependencies=[Depends(_bearer)])


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
    """The body, read as a stream against the cap: a chunked body past it is refused at the
    first chunk over, not after it has all been held in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiProblem(413, "request body too large", code="too-costly")
    parts: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise ApiProblem(413, "request body too large", code="too-costly")
        parts.append(chunk)
    return b"".join(parts)


@router.get("/cds-services", response_class=JsonResponse, openapi_extra=_DISCOVERY_DOC)
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
