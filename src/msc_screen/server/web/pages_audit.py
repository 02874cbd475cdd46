"""The audit log as admins read it: filter by patient, user, action and date, page through,
export CSV. Sign-off entries show the reason stored with the review beside the sha256 the
chain holds, and whether they match."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Select, select

from ...store.clinic_models import AuditEntry, Review, User
from .deps import admin_user, clinic, render
from .signoff import reason_text

router = APIRouter()
PAGE = 100
CSV_LIMIT = 100_000


def _query(patient: str, actor: str, action: str, since: str, until: str
           ) -> Select[Any]:
    q = select(AuditEntry)
    if patient.strip():
        pid = patient.strip().removeprefix("#").removeprefix("Patient/")
        q = q.where(AuditEntry.target == f"Patient/{pid}")
    if actor.strip():
        q = q.where(AuditEntry.actor == actor.strip())
    if action.strip():
        a = action.strip()
        q = q.where(AuditEntry.action.startswith(a) if a.endswith(".") else
                    AuditEntry.action == a)
    if since.strip():
        q = q.where(AuditEntry.ts >= since.strip()[:10])
    if until.strip():
        q = q.where(AuditEntry.ts < until.strip()[:10] + "T99")  # the whole day, as text
    return q


def _with_reasons(entries: list[AuditEntry], reviews: dict[int, Review]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        d = dict(e.details or {})
        row: dict[str, Any] = {"e": e, "details": d, "reason": None, "reason_ok": None}
        rid = d.get("review")
        if e.action == "signoff.create" and isinstance(rid, int) and rid in reviews:
            rv = reviews[rid]
            row["reason"] = "; ".join(x for x in (reason_text(rv.reason_code), rv.reason) if x)
            want = d.get("reason_sha256")
            have = hashlib.sha256((rv.reason or "").encode()).hexdigest() if rv.reason else None
            row["reason_ok"] = want == have and d.get("reason_code") == rv.reason_code
        out.append(row)
    return out


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, patient: str = "", actor: str = "", action: str = "",
               since: str = "", until: str = "", page: int = 1,
               user: User = Depends(admin_user)) -> Response:
    c = clinic(request)
    page = max(page, 1)
    q = _query(patient, actor, action, since, until)
    with c.read() as s:
        entries = list(s.scalars(q.order_by(AuditEntry.seq.desc())
                                 .offset((page - 1) * PAGE).limit(PAGE + 1)))
        more = len(entries) > PAGE
        entries = entries[:PAGE]
        ids = [d.get("review") for d in (e.details or {} for e in entries)]
        reviews = {r.id: r for r in s.scalars(select(Review).where(
            Review.id.in_([i for i in ids if isinstance(i, int)])))}
        actions = sorted(s.scalars(select(AuditEntry.action).distinct()))
    args = {k: v for k, v in (("patient", patient), ("actor", actor), ("action", action),
                              ("since", since), ("until", until)) if v}
    return render(request, "admin/audit.html", rows=_with_reasons(entries, reviews),
                  actions=actions, f=args, page=page,
                  prev=f"/admin/audit?{urlencode({**args, 'page': page - 1})}" if page > 1
                  else None,
                  next=f"/admin/audit?{urlencode({**args, 'page': page + 1})}" if more else None,
                  csv_url=f"/admin/audit.csv?{urlencode(args)}")


@router.get("/admin/audit.csv")
def audit_csv(request: Request, patient: str = "", actor: str = "", action: str = "",
              since: str = "", until: str = "", user: User = Depends(admin_user)) -> Response:
    c = clinic(request)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["seq", "ts", "actor", "action", "target", "details", "prev_hash", "hash"])
    with c.read() as s:
        for e in s.scalars(_query(patient, actor, action, since, until)
                           .order_by(AuditEntry.seq).limit(CSV_LIMIT)):
            w.writerow([e.seq, e.ts, _cell(e.actor), e.action, e.target or "",
                        _cell(json.dumps(e.details, sort_keys=True)), e.prev_hash, e.hash])
    with c.write() as s:
        c.audit(s, user.username, "audit.export", None, **{k: v for k, v in (
            ("patient", patient), ("actor", actor), ("action", action), ("since", since),
            ("until", until)) if v})
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="audit-log.csv"',
        "Cache-Control": "no-store"})


def _cell(v: str) -> str:
    """No spreadsheet formula injection from a user name or a detail."""
    return "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v
