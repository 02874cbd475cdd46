"""Errors as FHIR OperationOutcomes: every bad request names the resource/field, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..errors import InputError

log = logging.getLogger("msc_screen.server")

FHIR_JSON = "application/fhir+json"


class JsonResponse(JSONResponse):
    """JSON rendered by orjson (fast for large assessments and catalogues)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class FhirResponse(JsonResponse):
    media_type = FHIR_JSON


def issue(diagnostics: str, *, code: str = "invalid", severity: str = "error",
          expression: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        out["expression"] = [expression]
    return out


def operation_outcome(issues: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def input_error_issue(err: InputError) -> dict[str, Any]:
    expr = err.field or err.resource or None
    return issue(err.describe(), code="invalid", expression=expr)


class ApiProblem(Exception):
    """Raise from a handler to answer with an OperationOutcome and an HTTP status."""

    def __init__(self, status: int, diagnostics: str, *, code: str = "invalid",
                 expression: str | None = None, issues: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.issues = issues or [issue(diagnostics, code=code, expression=expression)]
        self.headers = headers

    def response(self) -> FhirResponse:
        return FhirResponse(operation_outcome(self.issues), status_code=self.status,
                            headers=self.headers)


def _validation_issue(err: Any) -> dict[str, Any]:
    loc = [str(p) for p in err.get("loc", ())]
    where = ".".join(loc)
    return issue(f"{where}: {err.get('msg', 'invalid')}", code="invalid", expression=where)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _problem(_req: Request, exc: ApiProblem) -> FhirResponse:
        return exc.response()

    @app.exception_handler(InputError)
    async def _input(_req: Request, exc: InputError) -> FhirResponse:
        return FhirResponse(operation_outcome([input_error_issue(exc)]), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> FhirResponse:
        return FhirResponse(operation_outcome(_validation_issue(e) for e in exc.errors()),
                            status_code=422)

    @app.exception_handler(Exception)
    async def _internal(req: Request, exc: Exception) -> FhirResponse:
        # Type only: exception text may quote request content (patient data).
        # the route template, never the concrete path: /p/{token}/... carries a patient's
        # live invitation token
        route = getattr(req.scope.get("route"), "path", None) or "<unmatched>"
        log.error("internal error on %s %s: %s", req.method, route, type(exc).__name__)
        return FhirResponse(operation_outcome([issue(
            "internal error; the server log has the error type", code="exception")]),
            status_code=500)
