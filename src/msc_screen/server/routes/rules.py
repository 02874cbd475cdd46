"""The rule catalogue: JSON for programs, HTML for a clinician following a card's link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from ...render.catalogue import catalogue, rule_entry
from ..problems import ApiProblem, JsonResponse
from ..screening import resolve_ruleset

router = APIRouter(tags=["rules"])
templates = Jinja2Templates(directory=str(Path(__file__).parents[1] / "templates"))

_HTML_OR_JSON: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/html": {}}}}


def wants_html(request: Request) -> bool:
    """True when the Accept header ranks text/html above JSON (a browser)."""
    best: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        fields = [f.strip() for f in part.split(";")]
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        best[fields[0].lower()] = max(q, best.get(fields[0].lower(), 0.0))
    html = best.get("text/html", 0.0)
    json_q = max(best.get("application/json", 0.0), best.get("*/*", 0.0) * 0.99)
    return html > 0 and html >= json_q


@router.get("/rules", response_class=JsonResponse, responses=_HTML_OR_JSON)
def list_rules(request: Request, policy: str | None = Query(None, max_length=100)) -> Response:
    """Every rule: severity, criteria in words, rationale, citations, ONC source attributes."""
    rs = resolve_ruleset(request.app.state.settings, policy)
    entries = catalogue(rs)
    if wants_html(request):
        return templates.TemplateResponse(request, "rules/index.html",
                                          {"rules": entries, "ruleset": rs.ruleset_info,
                                           "policy": rs.policy_info})
    return JsonResponse({"ruleset": rs.ruleset_info, "policy": rs.policy_info,
                          "rules": entries})


@router.get("/rules/{rule_id}", response_class=JsonResponse, responses=_HTML_OR_JSON)
def get_rule(request: Request, rule_id: str,
             policy: str | None = Query(None, max_length=100)) -> Response:
    """One rule's catalogue entry (the page a CDS card's source link opens)."""
    rs = resolve_ruleset(request.app.state.settings, policy)
    rule = next((r for r in rs.rules if r.id == rule_id), None)
    if rule is None:
        raise ApiProblem(404, f"no rule with id {rule_id[:80]!r}", code="not-found",
                         expression="rule_id")
    entry = rule_entry(rule, rs)
    if wants_html(request):
        return templates.TemplateResponse(request, "rules/rule.html", {"rule": entry})
    return JsonResponse(entry)

