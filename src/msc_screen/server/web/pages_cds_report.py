"""The CDS Hooks alert-fatigue report for admins: per hook, calls and calls that showed a
card; per rule, cards fired, accepted, overridden and why (the same figures as ``msc-screen
cds report``, from the call audit joined to the EHR's feedback)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from ...store.clinic_models import User
from ..cds.audit import report
from .deps import admin_user, render

router = APIRouter()


def _day(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value.strip()[:10]), dt.time(),
                                   dt.UTC) if value.strip() else None
    except ValueError:
        return None


@router.get("/admin/cds", response_class=HTMLResponse)
def cds_report_page(request: Request, since: str = "", until: str = "",
                    user: User = Depends(admin_user)) -> Response:
    r = report(request.app.state.db, _day(since), _day(until))
    return render(request, "admin/cds_report.html", r=r,
                  f={"since": since[:10], "until": until[:10]})
