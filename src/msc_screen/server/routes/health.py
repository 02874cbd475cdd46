"""Liveness with the ruleset identity, so operators can see what is loaded."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ... import __version__
from ..screening import resolve_ruleset

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """`{"status": "ok"}` with the version, ruleset and policy identities."""
    rs = resolve_ruleset(request.app.state.settings)
    return {"status": "ok", "version": __version__, "ruleset": rs.ruleset_info,
            "policy": rs.policy_info, "rules": len(rs.rules)}
