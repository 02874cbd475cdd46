"""``POST /screen``: a FHIR Bundle (or Parameters) in, the engine's Assessment out.

The body is read as raw bytes and handed to the FHIR reader once (msgspec), never validated as
a pydantic model: a 1 MB bundle would cost more to validate than to screen.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ...render.fhir import detected_issue_bundle
from ..problems import ApiProblem, FhirResponse
from ..screening import (
    complete_or_400,
    parse_day,
    resolve_ruleset,
    screen_bytes,
    screen_resources,
)

router = APIRouter(tags=["screening"])

MAX_BODY = 64 * 1024 * 1024

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A FHIR R4 Bundle of one or more patients' resources (any Bundle type, "
                       "NDJSON also accepted), or a Parameters resource with an `as-of` "
                       "parameter (valueDate) and the resources as `resource` parts.",
        "content": {
            ct: {"schema": {"type": "object", "required": ["resourceType"],
                            "properties": {"resourceType": {"type": "string"}}}}
            for ct in ("application/fhir+json", "application/json")
        },
    },
    "responses": {
        "200": {"description": "The Assessment of the one patient in the input (an object); "
                               "an array of Assessments, one per patient, when the input holds "
                               "several; with `format=fhir` a Bundle of DetectedIssue resources."},
        "400": {"description": "Bad input: an OperationOutcome naming resource and field."},
        "422": {"description": "Well-formed input without a patient: an OperationOutcome."},
    },
}


class _Head(msgspec.Struct):
    resourceType: str | None = None


_HEAD = msgspec.json.Decoder(_Head)


def _parameters(raw: bytes, day_in: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Resources and the ``as-of`` value from a Parameters resource."""
    try:
        params = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiProblem(400, f"request body: invalid JSON ({exc})") from None
    items = params.get("parameter")
    if not isinstance(items, list):
        raise ApiProblem(400, "Parameters.parameter must be a list", expression="Parameters.parameter")
    resources: list[dict[str, Any]] = []
    as_of = day_in
    for i, p in enumerate(items):
        where = f"Parameters.parameter[{i}]"
        if not isinstance(p, dict):
            raise ApiProblem(400, f"{where} must be an object", expression=where)
        if p.get("name") == "as-of" and day_in is None:
            value = p.get("valueDate") or p.get("valueDateTime") or p.get("valueString")
            if not isinstance(value, str):
                raise ApiProblem(400, f"{where}: as-of needs valueDate (YYYY-MM-DD)",
                                 code="value", expression=f"{where}.valueDate")
            as_of = value
        elif "resource" in p:
            res = p["resource"]
            if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
                raise ApiProblem(400, f"{where}.resource is not a FHIR resource",
                                 expression=f"{where}.resource")
            resources.append(res)
    if not resources:
        raise ApiProblem(400, "Parameters has no resource part to screen",
                         code="required", expression="Parameters.parameter.resource")
    return resources, as_of


@router.post("/screen", openapi_extra=_BODY_DOC, response_model=None)
async def screen(
    request: Request,
    as_of: str | None = Query(None, description="Screening date (YYYY-MM-DD); default today",
                              max_length=40),
    policy: str | None = Query(None, description="A policy named in the knowledge base",
                               max_length=100),
    format: Literal["json", "fhir"] = Query("json", description="`fhir`: DetectedIssue Bundle"),
    patient: str | None = Query(None, max_length=64, description=(
        "Screen only this patient (a Patient id in the input): resources of any other patient "
        "are left out and named in the assessment's warnings, never screened")),
    complete: str | None = Query(None, max_length=300, description=(
        "Kinds of data the input holds completely (`all`, or a comma-separated list of "
        "conditions, medications, procedures, allergies, laboratory, pregnancy-status, "
        "documents, demographics): provided even when the input holds none of them. Default: "
        "a kind is provided when the input holds at least one resource of it; a rule with none "
        "of the data it needs is `unknown`, never `absent`")),
) -> Response:
    """Screen the patient(s) in a FHIR Bundle for contraindications to IV MSC therapy."""
    settings = request.app.state.settings
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiProblem(413, f"request body over {MAX_BODY // 2**20} MiB", code="too-costly")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiProblem(413, f"request body over {MAX_BODY // 2**20} MiB", code="too-costly")
    if not raw.strip():
        raise ApiProblem(400, "request body is empty; send a FHIR Bundle", code="required")
    ruleset = resolve_ruleset(settings, policy)
    kinds = complete_or_400(ruleset, complete)
    try:
        head = _HEAD.decode(raw).resourceType
    except (msgspec.DecodeError, msgspec.ValidationError):
        head = None  # NDJSON or broken JSON: the reader reports it precisely
    if head == "Parameters":
        resources, day_text = _parameters(raw, as_of)
        day = parse_day(day_text, settings, "as-of")
        assessments = screen_resources(resources, "request body", day, ruleset, patient, kinds)
    else:
        day = parse_day(as_of, settings)
        assessments = screen_bytes(raw, "request body", day, ruleset, patient, kinds)
    if format == "fhir":
        return FhirResponse(detected_issue_bundle(assessments))
    if len(assessments) == 1:
        return Response(assessments[0].to_json(), media_type="application/json")
    return Response(b"[" + b",".join(a.to_json() for a in assessments) + b"]",
                    media_type="application/json")

