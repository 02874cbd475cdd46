"""Sign-in and the clinicians' pages: queue, patient page, uploads, re-screening, sign-off,
history and the printable report. Every route checks the user's role."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from starlette.datastructures import FormData, UploadFile

from ...model import DECISIONS
from ...store.clinic_models import (
    Invitation,
    Patient,
    QuestionnaireAnswer,
    Review,
    StoredAssessment,
    UploadedRecord,
    User,
)
from .clinic import SIGN_OFF_OUTCOMES, ClinicError, rule_definition
from .deps import (
    Forbidden,
    checked_form,
    clinic,
    current_user,
    field,
    render,
    require,
    staff_user,
)
from .records import check_upload
from .security import SESSION_COOKIE, check_password

router = APIRouter()

DECISION_WORDS = {
    "contraindicated": "Contraindication reported",
    "physician-review": "Physician review",
    "needs-information": "More information needed",
    "no-contraindication-found": "No contraindication found",
}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return RedirectResponse("/clinic" if current_user(request) else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/clinic") -> HTMLResponse:
    return render(request, "clinic/login.html", next=_safe_next(next), error=None)


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, host, backslash or control character)."""
    ok = (target.startswith("/") and not target.startswith("//") and "\\" not in target
          and target.isprintable() and ":" not in target.split("?", 1)[0])
    return target if ok else "/clinic"


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, posted: FormData = Depends(checked_form)) -> Response:
    c = clinic(request)
    username = field(posted, "username").strip()[:80]
    password = field(posted, "password")
    nxt = _safe_next(field(posted, "next") or "/clinic")
    keys = (f"user:{username.lower()}", f"ip:{_client(request)}")
    if c.throttle.blocked(*keys):
        return render(request, "clinic/login.html", 429, next=nxt,
                      error="Too many failed sign-in attempts. Wait 15 minutes and try again.")
    with c.read() as s:
        user = s.scalar(select(User).where(User.username == username))
    if not check_password(user.password_hash if user else None, password) or user is None \
            or not user.active:
        c.throttle.failed(*keys)
        with c.write() as s:
            c.audit(s, "anonymous", "login.failed", None)
        return render(request, "clinic/login.html", 401, next=nxt,
                      error="The user name or password is not right.")
    c.throttle.succeeded(keys[0])
    token = c.start_session(user)
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, secure=c.config.cookie_secure,
                    samesite="strict", path="/")
    return resp


@router.post("/logout")
def logout(request: Request, posted: FormData = Depends(checked_form)) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        clinic(request).end_session(token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/clinic", response_class=HTMLResponse)
def queue(request: Request, decision: str = "", user: User = Depends(staff_user)) -> Response:
    c = clinic(request)
    with c.read() as s:
        latest = (select(StoredAssessment.patient_id,
                         func.max(StoredAssessment.id).label("aid"))
                  .group_by(StoredAssessment.patient_id).subquery())
        q = (select(Patient, StoredAssessment)
             .outerjoin(latest, latest.c.patient_id == Patient.id)
             .outerjoin(StoredAssessment, StoredAssessment.id == latest.c.aid))
        if decision in DECISIONS:
            q = q.where(StoredAssessment.decision == decision)
        rows = s.execute(q).all()
        signed = {pid: (outcome, aid) for pid, outcome, aid in s.execute(
            select(Review.patient_id, Review.outcome, Review.assessment_id)
            .where(Review.kind == "sign-off").order_by(Review.id))}
    order = {d: i for i, d in enumerate(DECISIONS)}
    items: list[dict[str, Any]] = []
    for p, a in rows:
        so = signed.get(p.id)
        items.append({"patient": p, "assessment": a,
                      "signed": so is not None and a is not None and so[1] == a.id,
                      "outcome": SIGN_OFF_OUTCOMES.get(so[0] or "") if so else None})

    def rank(it: dict[str, Any]) -> tuple[bool, int, float]:
        a: StoredAssessment | None = it["assessment"]
        if a is None:
            return (bool(it["signed"]), 8, 0.0)
        return (bool(it["signed"]), order.get(a.decision, 9), -a.created_at.timestamp())

    items.sort(key=rank)
    return render(request, "clinic/queue.html", items=items, decision=decision,
                  decisions=DECISIONS, words=DECISION_WORDS)


@router.post("/clinic/patients", response_class=HTMLResponse)
def create_patient(request: Request, user: User = Depends(staff_user),
                   posted: FormData = Depends(checked_form)) -> Response:
    c = clinic(request)
    try:
        p = c.create_patient(user.username, field(posted, "name"),
                             field(posted, "birth_date") or None, field(posted, "gender") or None)
    except ClinicError as exc:
        return render(request, "error.html", 400, title="Patient not added", message=str(exc))
    return RedirectResponse(f"/clinic/patients/{p.id}", status_code=303)


def _patient_context(request: Request, pid: int, assessment_id: int | None = None
                     ) -> dict[str, Any] | None:
    c = clinic(request)
    with c.read() as s:
        p = s.get(Patient, pid)
        if p is None:
            return None
        history = s.scalars(select(StoredAssessment).where(StoredAssessment.patient_id == pid)
                            .order_by(StoredAssessment.id.desc())).all()
        reviews = s.execute(select(Review, User.username).join(User, User.id == Review.user_id)
                            .where(Review.patient_id == pid).order_by(Review.id.desc())).all()
        uploads = s.scalars(select(UploadedRecord).where(UploadedRecord.patient_id == pid)
                            .order_by(UploadedRecord.id)).all()
        invites = s.scalars(select(Invitation).where(Invitation.patient_id == pid)
                            .order_by(Invitation.id.desc())).all()
        responses = s.scalars(select(QuestionnaireAnswer)
                              .where(QuestionnaireAnswer.patient_id == pid)
                              .order_by(QuestionnaireAnswer.id.desc())).all()
    shown = history[0] if history else None
    if assessment_id is not None:
        shown = next((a for a in history if a.id == assessment_id), None)
        if shown is None:
            return None
    return {"patient": p, "history": history, "reviews": reviews, "shown": shown,
            "latest": history[0] if history else None,
            "findings": _findings(shown) if shown else [],
            "uploads": [{"id": u.id, "filename": u.filename, "size": len(u.data),
                         "created_at": u.created_at} for u in uploads],
            "invites": invites, "responses": responses, "words": DECISION_WORDS,
            "outcomes": SIGN_OFF_OUTCOMES}


def _findings(a: StoredAssessment) -> list[dict[str, Any]]:
    """The findings in the engine's order (present, then unknown, then absent; worst first),
    with each rule's rationale from the knowledge base."""
    out = []
    doc: dict[str, Any] = a.document
    for f in doc.get("findings", []):
        rule = rule_definition(f["rule"])
        out.append({**f, "rationale": rule.rationale if rule else None})
    return out


@router.get("/clinic/patients/{pid}", response_class=HTMLResponse)
def patient_page(request: Request, pid: int, user: User = Depends(staff_user)) -> Response:
    ctx = _patient_context(request, pid)
    if ctx is None:
        return render(request, "error.html", 404, title="Not found",
                      message="No such patient.")
    return render(request, "clinic/patient.html", **ctx, invite_link=None, upload_errors=[],
                  form_error=None)


@router.post("/clinic/patients/{pid}/invite", response_class=HTMLResponse)
def invite(request: Request, pid: int, user: User = Depends(staff_user),
           posted: FormData = Depends(checked_form)) -> Response:
    c = clinic(request)
    try:
        token = c.create_invitation(user, pid)
    except ClinicError as exc:
        return render(request, "error.html", 404, title="Not found", message=str(exc))
    ctx = _patient_context(request, pid)
    assert ctx is not None
    link = str(request.base_url).rstrip("/") + f"/p/{token}"
    return render(request, "clinic/patient.html", **ctx, invite_link=link, upload_errors=[],
                  form_error=None)


@router.post("/clinic/patients/{pid}/upload", response_class=HTMLResponse)
async def upload(request: Request, pid: int, user: User = Depends(staff_user),
                 posted: FormData = Depends(checked_form)) -> Response:
    from starlette.concurrency import run_in_threadpool

    f = posted.get("file")
    errors: list[str] = []
    if not isinstance(f, UploadFile) or not f.filename:
        errors = ["Choose a FHIR Bundle (.json) or NDJSON file to upload."]
        data, name = b"", ""
    else:
        limit = clinic(request).config.max_upload_bytes
        data = await f.read(limit + 1)
        name = f.filename
        if len(data) > limit:
            errors = [f"{name}: the file is larger than {limit // (1024 * 1024)} MB; upload "
                      "one patient's records."]
    if not errors:
        patients, read_errors = await run_in_threadpool(check_upload, data, name)
        errors = [e.describe() for e in read_errors[:20]]
        if not errors and patients != 1:
            errors = [f"{name}: the file holds records for {patients} patients; upload one "
                      "patient's records at a time."]
    if not errors:
        try:
            await run_in_threadpool(clinic(request).add_upload, user, pid, name, data)
        except ClinicError as exc:
            errors = [str(exc)]
    if errors:
        ctx = await run_in_threadpool(_patient_context, request, pid)
        if ctx is None:
            return render(request, "error.html", 404, title="Not found", message="No such patient.")
        return render(request, "clinic/patient.html", 400, **ctx, invite_link=None,
                      upload_errors=errors, form_error=None)
    return RedirectResponse(f"/clinic/patients/{pid}", status_code=303)


@router.post("/clinic/patients/{pid}/rescreen")
def rescreen(request: Request, pid: int, user: User = Depends(staff_user),
             posted: FormData = Depends(checked_form)) -> Response:
    try:
        clinic(request).rescreen(user.username, pid)
    except ClinicError as exc:
        return render(request, "error.html", 404, title="Not found", message=str(exc))
    return RedirectResponse(f"/clinic/patients/{pid}", status_code=303)


@router.post("/clinic/patients/{pid}/signoff", response_class=HTMLResponse)
def sign_off(request: Request, pid: int, posted: FormData = Depends(checked_form)) -> Response:
    user = require(request, "staff", "physician", "admin")
    if user.role != "physician":
        raise Forbidden("Only a physician can sign off a screening.")
    try:
        aid = int(field(posted, "assessment_id"))
    except ValueError:
        aid = -1
    try:
        clinic(request).sign_off(user, pid, aid, field(posted, "outcome"), field(posted, "reason"))
    except ClinicError as exc:
        ctx = _patient_context(request, pid)
        if ctx is None:
            return render(request, "error.html", 404, title="Not found", message="No such patient.")
        return render(request, "clinic/patient.html", 400, **ctx, invite_link=None,
                      upload_errors=[], form_error=str(exc))
    return RedirectResponse(f"/clinic/patients/{pid}", status_code=303)


@router.post("/clinic/patients/{pid}/note", response_class=HTMLResponse)
def add_note(request: Request, pid: int, user: User = Depends(staff_user),
             posted: FormData = Depends(checked_form)) -> Response:
    try:
        aid = int(field(posted, "assessment_id"))
        clinic(request).add_note(user, pid, aid, field(posted, "note"))
    except (ValueError, ClinicError) as exc:
        msg = str(exc) if isinstance(exc, ClinicError) else "No such screening."
        return render(request, "error.html", 400, title="Note not saved", message=msg)
    return RedirectResponse(f"/clinic/patients/{pid}", status_code=303)


@router.get("/clinic/patients/{pid}/report", response_class=HTMLResponse)
def report(request: Request, pid: int, assessment: int | None = None,
           user: User = Depends(staff_user)) -> Response:
    ctx = _patient_context(request, pid, assessment)
    if ctx is None or ctx["shown"] is None:
        return render(request, "error.html", 404, title="Not found",
                      message="No screening to report for this patient.")
    return render(request, "clinic/report.html", **ctx)
