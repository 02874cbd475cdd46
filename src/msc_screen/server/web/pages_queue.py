"""The screening queue: search (name, birth date, id), filter by decision and sign-off
status, sort, page. A sign-off counts for the newest screening when it was made on it or on an
earlier screening with the same fingerprint (signoff.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from ...model import DECISIONS
from ...store.clinic_models import Patient, Review, StoredAssessment, User
from .clinic import SIGN_OFF_OUTCOMES
from .deps import clinic, render, staff_user
from .response_view import age_of
from .signoff import carries

router = APIRouter()

PAGE = 25
STATUSES = {"": "Any status", "awaiting": "Awaiting physician", "signed": "Signed off",
            "superseded": "Sign-off superseded", "not-screened": "Not screened yet"}
SORTS = {"priority": "Unsigned first, most serious first", "name": "Name",
         "birth": "Birth date", "screened": "Newest screening first"}
DECISION_WORDS = {
    "contraindicated": "Contraindication reported",
    "physician-review": "Physician review",
    "needs-information": "More information needed",
    "no-contraindication-found": "No contraindication found",
}


def _rows(request: Request) -> list[dict[str, Any]]:
    c = clinic(request)
    today = c.now().date()
    with c.read() as s:
        latest = (select(StoredAssessment.patient_id,
                         func.max(StoredAssessment.id).label("aid"))
                  .group_by(StoredAssessment.patient_id).subquery())
        rows = s.execute(select(Patient, StoredAssessment)
                         .outerjoin(latest, latest.c.patient_id == Patient.id)
                         .outerjoin(StoredAssessment, StoredAssessment.id == latest.c.aid)).all()
        newest: dict[int, Review] = {}
        for r in s.scalars(select(Review).where(Review.kind == "sign-off").order_by(Review.id)):
            newest[r.patient_id] = r
        signed_on = {a.id: a for a in s.scalars(select(StoredAssessment).where(
            StoredAssessment.id.in_([r.assessment_id for r in newest.values()])))}
    items = []
    for p, a in rows:
        so = newest.get(p.id)
        basis = signed_on.get(so.assessment_id) if so else None
        signed = bool(a is not None and basis is not None and carries(basis, a))
        status = ("not-screened" if a is None else "signed" if signed
                  else "superseded" if so is not None else "awaiting")
        items.append({"patient": p, "assessment": a, "signed": signed, "status": status,
                      "age": age_of(p.birth_date, today),
                      "outcome": SIGN_OFF_OUTCOMES.get(so.outcome or "") if so and signed
                      else None})
    return items


def _matches(it: dict[str, Any], q: str) -> bool:
    p: Patient = it["patient"]
    q = q.strip().lower()
    hay = [p.display_name.lower(), p.birth_date or "", (p.identifier or "").lower(),
           p.fhir_id.lower(), str(p.id)]
    return all(any(w in h for h in hay) for w in q.split())


def _sorted(items: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    order = {d: i for i, d in enumerate(DECISIONS)}
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def when(it: dict[str, Any]) -> float:
        a = it["assessment"]
        t = a.created_at if a else epoch
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()

    if sort == "name":
        return sorted(items, key=lambda it: (it["patient"].display_name.lower(), it["patient"].id))
    if sort == "birth":
        return sorted(items, key=lambda it: (it["patient"].birth_date or "9999", it["patient"].id))
    if sort == "screened":
        return sorted(items, key=lambda it: -when(it))

    def rank(it: dict[str, Any]) -> tuple[bool, int, float]:
        a = it["assessment"]
        return (bool(it["signed"]), order.get(a.decision, 9) if a else 8, -when(it))

    return sorted(items, key=rank)


@router.get("/clinic", response_class=HTMLResponse)
def queue(request: Request, decision: str = "", status: str = "", q: str = "",
          sort: str = "priority", page: int = 1, user: User = Depends(staff_user)) -> Response:
    items = _rows(request)
    decision = decision if decision in DECISIONS else ""
    status = status if status in STATUSES else ""
    sort = sort if sort in SORTS else "priority"
    if decision:
        items = [it for it in items if it["assessment"] and it["assessment"].decision == decision]
    if status:
        items = [it for it in items if it["status"] == status]
    if q.strip():
        items = [it for it in items if _matches(it, q[:200])]
    items = _sorted(items, sort)
    pages = max(1, -(-len(items) // PAGE))
    page = min(max(page, 1), pages)

    def url(n: int) -> str:
        args = {k: v for k, v in (("q", q), ("decision", decision), ("status", status),
                                  ("sort", sort)) if v}
        return "/clinic?" + urlencode({**args, "page": n})

    return render(request, "clinic/queue.html", items=items[(page - 1) * PAGE:page * PAGE],
                  total=len(items), page=page, pages=pages, prev=url(page - 1) if page > 1
                  else None, next=url(page + 1) if page < pages else None,
                  decision=decision, status=status, q=q, sort=sort, decisions=DECISIONS,
                  statuses=STATUSES, sorts=SORTS, words=DECISION_WORDS)


def next_unsigned(request: Request, pid: int) -> dict[str, Any] | None:
    """The next patient awaiting a physician, in queue order (for "next patient")."""
    for it in _sorted(_rows(request), "priority"):
        if it["patient"].id != pid and it["status"] in ("awaiting", "superseded"):
            return {"id": it["patient"].id, "name": it["patient"].display_name}
    return None
