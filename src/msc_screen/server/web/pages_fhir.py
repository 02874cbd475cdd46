"""``GET /fhir/Questionnaire/msc-prescreen``: the questionnaire built from the rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ...questionnaire import QUESTIONNAIRE_ID
from .deps import clinic

router = APIRouter(tags=["fhir"])


@router.get(f"/fhir/Questionnaire/{QUESTIONNAIRE_ID}",
            summary="The pre-screening FHIR R4 Questionnaire built from the knowledge base")
def questionnaire(request: Request) -> JSONResponse:
    body: dict[str, Any] = clinic(request).form().to_fhir()
    return JSONResponse(body, media_type="application/fhir+json")
