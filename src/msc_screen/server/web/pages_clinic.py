"""Sign-in and the clinicians' pages: queue, patient page, uploads, re-screening, sign-off,
history and the printable report. Every route checks the user's role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from ...questionnaire import FormDef
from ...store.clinic_models import (
    Invitation,
    Patient,
    QuestionnaireAnswer,
    Review,
    StoredAssessment,
    UploadedRecord,
    User,
)
from .clinic import SIGN_OFF_OUTCOMES, ClinicError, SignOffError, rule_definition
from .coverage_view import coverage_view, finding_data, kind_title
from .deps import (
    Forbidden,
    checked_form,
    clinic,
    field,
    render,
    require,
    staff_user,
)
from .flash import clear_flash, set_flash, take_flash
from .records import Inspected, inspect_upload
from .response_view import age_of, conflicts, invite_view, responses_view
from .signoff import reason_text, standing
from .signoff import reasons as signoff_reasons

router = APIRouter()

DECISION_WORDS = {
    "contraindicated": "Contraindication reported",
    "physician-review": "Physician review",
    "needs-information": "More information needed",
    "no-contraindication-found": "No contraindication found",
}


@router.post("/clinic/patients", response_class=HTMLResponse)
def create_patient(request: Request, user: User = Depends(staff_user),
                   posted: FormData = Depends(checked_form)) -> Response:
    c = clinic(request)
    try:
        p = c.create_patient(user.username, field(posted, "name"),
                             field(posted, "birth_date") or None, field(posted, "gender") or None,
                             field(posted, "identifier") or None)
    except ClinicError as exc:
        return render(request, "error.html", 400, title="Patient not added", message=str(exc))
    return RedirectResponse(f"/clinic/patients/{p.id}", status_code=303)


def _patient_context(request: Request, pid: int, assessment_id: int | None = None,
                     notice: str = "", notice_upload: int | None = None
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
        names = _usernames(s)
        form = c.form(s)
    shown = history[0] if history else None
    if assessment_id is not None:
        shown = next((a for a in history if a.id == assessment_id), None)
        if shown is None:
            return None
    listed = [upload_view(u, names) for u in uploads]
    latest = history[0] if history else None
    by_id = {a.id: a for a in history}
    signoffs = [r for r, _ in reviews if r.kind == "sign-off"]
    stands, superseded = standing(latest, signoffs, by_id)
    findings = _findings(shown, form) if shown else []
    now = c.now()
    return {"patient": p, "history": history, "reviews": reviews, "shown": shown,
            "latest": latest, "age": age_of(p.birth_date, now.date()),
            "findings": findings,
            "review_findings": [f for f in findings if f["status"] != "absent"],
            "absent_findings": [f for f in findings if f["status"] == "absent"],
            "coverage": coverage_view(shown.document, form) if shown else None,
            "uploads": listed, "invites": [invite_view(i, now, names) for i in invites],
            "responses": responses,
            "answers": responses_view(form, list(responses), {i.id: i for i in invites}),
            "conflicts": conflicts(form, list(responses)),
            "stands": stands, "superseded": superseded,
            "superseded_of": by_id.get(superseded.assessment_id) if superseded else None,
            "signed_names": names, "reasons": signoff_reasons(), "reason_text": reason_text,
            "words": DECISION_WORDS, "outcomes": SIGN_OFF_OUTCOMES,
            "notice": _notice(notice, next((u for u in listed if u["id"] == notice_upload),
                                           None))}


def _usernames(s: Session) -> dict[int, str]:
    return {uid: name for uid, name in s.execute(select(User.id, User.username))}


UPLOAD_STATUS_WORDS = {
    "pending": "Awaiting confirmation: not read",
    "active": "Read by screenings",
    "withdrawn": "Withdrawn: no longer read",
    "cancelled": "Cancelled: never read",
}
DIFF_FIELDS = {"patient": "Patient", "name": "Name", "birth-date": "Birth date", "sex": "Sex",
               "identifier": "Identifier", "deceased": "Deceased", "identity": "Identity"}


def upload_view(u: UploadedRecord, names: dict[int, str]) -> dict[str, Any]:
    """One upload as the pages list it: who sent it and when, what it is, who it names, what
    it held, and what became of it."""
    summary: dict[str, Any] = dict(u.summary or {})
    person = summary.get("patient") if isinstance(summary.get("patient"), dict) else None
    got = summary.get("held")
    held: dict[str, Any] = got if isinstance(got, dict) else {}
    diffs = [d for d in summary.get("differences") or () if isinstance(d, dict)]
    return {
        "id": u.id, "filename": u.filename, "size": u.size, "sha256": u.sha256,
        "created_at": u.created_at, "by": names.get(u.uploaded_by or -1, "—"),
        "status": u.status, "status_words": UPLOAD_STATUS_WORDS.get(u.status, u.status),
        "complete": u.complete, "person": person, "recorded": bool(summary),
        "held": [{"kind": k, "title": kind_title(k), "count": n} for k, n in held.items()],
        "differences": [{**d, "label": DIFF_FIELDS.get(str(d.get("field")), d.get("field"))}
                        for d in diffs],
        "confirmed": ({"by": names.get(u.confirmed_by or -1, "—"), "at": u.confirmed_at,
                       "reason": u.confirm_reason} if u.confirmed_at else None),
        "ended": ({"by": names.get(u.ended_by or -1, "—"), "at": u.ended_at,
                   "reason": u.ended_reason} if u.ended_at else None),
    }


NOTICES = {
    "uploaded": "“{f}” was read and the patient was screened again.",
    "duplicate": "“{f}” is already uploaded for this patient (on {when} by {by}): an identical "
                 "file is kept once, and nothing changed.",
    "confirmed": "“{f}” was confirmed as this patient's records and read; the patient was "
                 "screened again.",
    "cancelled": "The upload of “{f}” was cancelled: it was never read, and its contents were "
                 "deleted.",
    "withdrawn": "“{f}” was withdrawn: the patient was screened again without it.",
    "complete-on": "“{f}” is marked as the patient's complete record.",
    "complete-off": "“{f}” is no longer marked as the patient's complete record.",
}
# notices that name no upload
PLAIN_NOTICES = {
    "revoked": "The questionnaire link was revoked: it no longer opens the questionnaire.",
    "rescreened-same": "Screened again: nothing changed, so the sign-off stands.",
    "rescreened": "Screened again.",
    "note": "The note was saved.",
}


def _notice(code: str, u: dict[str, Any] | None) -> str | None:
    """A fixed message for a finished action (after the redirect): only known codes, with
    the upload's own name, so nothing from the query string reaches the page."""
    if code in PLAIN_NOTICES:
        return PLAIN_NOTICES[code]
    if code not in NOTICES or u is None:
        return None
    return NOTICES[code].format(f=u["filename"], by=u["by"],
                                when=u["created_at"].strftime("%Y-%m-%d %H:%M"))


def _findings(a: StoredAssessment, form: FormDef | None = None) -> list[dict[str, Any]]:
    """The findings in the engine's order (present, then unknown, then absent; worst first),
    with each rule's rationale from the knowledge base and, where data was missing, which."""
    out = []
    doc: dict[str, Any] = a.document
    for f in doc.get("findings", []):
        rule = rule_definition(f["rule"])
        out.append({**f, "rationale": rule.rationale if rule else None,
                    **finding_data(f, doc, form)})
    return out


def _int(v: str) -> int | None:
    try:
        return int(v)
    except ValueError:
        return None


@router.get("/clinic/patients/{pid}", response_class=HTMLResponse)
def patient_page(request: Request, pid: int, notice: str = "", upload: str = "",
                 user: User = Depends(staff_user)) -> Response:
    ctx = _patient_context(request, pid, notice=notice, notice_upload=_int(upload))
    if ctx is None:
        return render(request, "error.html", 404, title="Not found",
                      message="No such patient.")
    viewed(request, user, "patient.view", pid)
    link = take_flash(request, f"invite:{pid}")
    resp = render(request, "clinic/patient.html", **ctx,
                  invite_link=_link(request, link) if link else None, upload_errors=[],
                  signoff=_signoff_form(), signed_next=_next_patient(request, pid)
                  if notice == "signed" else None, signed=notice == "signed")
    if link:
        clear_flash(resp, pid)
    return resp


def _link(request: Request, token: str) -> str:
    return str(request.base_url).rstrip("/") + f"/p/{token}"


def _signoff_form(outcome: str = "", code: str = "", reason: str = "",
                  errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {"outcome": outcome, "reason_code": code, "reason": reason, "errors": errors or {}}


def viewed(request: Request, user: User, action: str, pid: int, **details: Any) -> None:
    """Page views of patient data are audited (who, which patient, what page)."""
    c = clinic(request)
    with c.write() as s:
        c.audit(s, user.username, action, f"Patient/{pid}", **details)


def _next_patient(request: Request, pid: int) -> dict[str, Any] | None:
    from .pages_queue import next_unsigned

    return next_unsigned(request, pid)


@router.post("/clinic/patients/{pid}/invite", response_class=HTMLResponse)
def invite(request: Request, pid: int, user: User = Depends(staff_user),
           posted: FormData = Depends(checked_form)) -> Response:
    c = clinic(request)
    try:
        token = c.create_invitation(user, pid)
    except ClinicError as exc:
        return render(request, "error.html", 404, title="Not found", message=str(exc))
    resp = RedirectResponse(f"/clinic/patients/{pid}#invite-h", status_code=303)
    set_flash(request, resp, f"invite:{pid}", token, pid)
    return resp


@router.post("/clinic/patients/{pid}/invites/{iid}/revoke", response_class=HTMLResponse)
def revoke_invite(request: Request, pid: int, iid: int, user: User = Depends(staff_user),
                  posted: FormData = Depends(checked_form)) -> Response:
    try:
        clinic(request).revoke_invitation(user, pid, iid)
    except ClinicError as exc:
        return render(request, "error.html", 400, title="Link not revoked", message=str(exc))
    return RedirectResponse(f"/clinic/patients/{pid}?notice=revoked#invite-h", status_code=303)


@router.post("/clinic/patients/{pid}/upload", response_class=HTMLResponse)
async def upload(request: Request, pid: int, user: User = Depends(staff_user),
                 posted: FormData = Depends(checked_form)) -> Response:
    from starlette.concurrency import run_in_threadpool

    c = clinic(request)
    f = posted.get("file")
    complete = field(posted, "complete") == "yes"
    errors: list[str] = []
    inspected: Inspected | None = None
    if not isinstance(f, UploadFile) or not f.filename:
        errors = ["Choose a FHIR Bundle (.json) or NDJSON file to upload."]
        data, name = b"", ""
    else:
        limit = c.config.max_upload_bytes
        data = await f.read(limit + 1)
        name = f.filename
        if len(data) > limit:
            errors = [f"{name}: the file is larger than {limit // (1024 * 1024)} MB; upload "
                      "one patient's records."]
    if not errors:
        inspected = await run_in_threadpool(inspect_upload, data, name, c.ruleset())
        errors = [e.describe() for e in inspected.errors[:20]]
        if not errors and inspected.patients != 1:
            errors = [f"{name}: the file holds records for {inspected.patients} patients; "
                      "upload one patient's records at a time."]
    if not errors:
        try:
            got = await run_in_threadpool(
                lambda: c.add_upload(user, pid, name, data, complete=complete,
                                     inspected=inspected))
        except ClinicError as exc:
            errors = [str(exc)]
    if errors:
        ctx = await run_in_threadpool(_patient_context, request, pid)
        if ctx is None:
            return render(request, "error.html", 404, title="Not found", message="No such patient.")
        return render(request, "clinic/patient.html", 400, **ctx, invite_link=None,
                      upload_errors=errors, signoff=_signoff_form())
    if got.status == "needs-confirmation":
        return RedirectResponse(f"/clinic/patients/{pid}/uploads/{got.upload}", status_code=303)
    code = "duplicate" if got.status == "duplicate" else "uploaded"
    return RedirectResponse(f"/clinic/patients/{pid}?notice={code}&upload={got.upload}",
                            status_code=303)


def _upload_page(request: Request, pid: int, uid: int, status: int = 200,
                 error: str | None = None) -> Response:
    c = clinic(request)
    with c.read() as s:
        p = s.get(Patient, pid)
        u = s.get(UploadedRecord, uid)
        if p is None or u is None or u.patient_id != pid:
            return render(request, "error.html", 404, title="Not found",
                          message="No such upload for this patient.")
        view = upload_view(u, _usernames(s))
    return render(request, "clinic/upload.html", status, patient=p, u=view, error=error)


@router.get("/clinic/patients/{pid}/uploads/{uid}", response_class=HTMLResponse)
def upload_page(request: Request, pid: int, uid: int,
                user: User = Depends(staff_user)) -> Response:
    return _upload_page(request, pid, uid)


def _upload_action(request: Request, pid: int, uid: int, notice: str,
                   act: Callable[[], object]) -> Response:
    try:
        act()
    except ClinicError as exc:
        return _upload_page(request, pid, uid, 400, str(exc))
    return RedirectResponse(f"/clinic/patients/{pid}?notice={notice}&upload={uid}",
                            status_code=303)


@router.post("/clinic/patients/{pid}/uploads/{uid}/confirm", response_class=HTMLResponse)
def confirm_upload(request: Request, pid: int, uid: int, user: User = Depends(staff_user),
                   posted: FormData = Depends(checked_form)) -> Response:
    return _upload_action(request, pid, uid, "confirmed", lambda: clinic(request).confirm_upload(
        user, pid, uid, field(posted, "reason")))


@router.post("/clinic/patients/{pid}/uploads/{uid}/cancel", response_class=HTMLResponse)
def cancel_upload(request: Request, pid: int, uid: int, user: User = Depends(staff_user),
                  posted: FormData = Depends(checked_form)) -> Response:
    return _upload_action(request, pid, uid, "cancelled",
                          lambda: clinic(request).cancel_upload(user, pid, uid))


@router.post("/clinic/patients/{pid}/uploads/{uid}/withdraw", response_class=HTMLResponse)
def withdraw_upload(request: Request, pid: int, uid: int, user: User = Depends(staff_user),
                    posted: FormData = Depends(checked_form)) -> Response:
    return _upload_action(request, pid, uid, "withdrawn",
                          lambda: clinic(request).withdraw_upload(user, pid, uid,
                                                                  field(posted, "reason")))


@router.post("/clinic/patients/{pid}/uploads/{uid}/complete", response_class=HTMLResponse)
def mark_complete(request: Request, pid: int, uid: int, user: User = Depends(staff_user),
                  posted: FormData = Depends(checked_form)) -> Response:
    on = field(posted, "complete") == "yes"
    return _upload_action(request, pid, uid, "complete-on" if on else "complete-off",
                          lambda: clinic(request).set_upload_complete(user, pid, uid, on))


@router.post("/clinic/patients/{pid}/rescreen")
def rescreen(request: Request, pid: int, user: User = Depends(staff_user),
             posted: FormData = Depends(checked_form)) -> Response:
    c = clinic(request)
    try:
        with c.read() as s:
            before = s.scalar(select(StoredAssessment.findings_sha256)
                              .where(StoredAssessment.patient_id == pid)
                              .order_by(StoredAssessment.id.desc()).limit(1))
        got = c.rescreen(user.username, pid)
    except ClinicError as exc:
        return render(request, "error.html", 404, title="Not found", message=str(exc))
    same = before is not None and before == got.findings_sha256
    return RedirectResponse(f"/clinic/patients/{pid}?notice="
                            f"{'rescreened-same' if same else 'rescreened'}", status_code=303)


@router.post("/clinic/patients/{pid}/signoff", response_class=HTMLResponse)
def sign_off(request: Request, pid: int, posted: FormData = Depends(checked_form)) -> Response:
    user = require(request, "staff", "physician", "admin")
    if user.role != "physician":
        raise Forbidden("Only a physician can sign off a screening.")
    try:
        aid = int(field(posted, "assessment_id"))
    except ValueError:
        aid = -1
    outcome, code, reason = (field(posted, "outcome"), field(posted, "reason_code"),
                             field(posted, "reason"))
    try:
        clinic(request).sign_off(user, pid, aid, outcome, reason, code)
    except ClinicError as exc:
        ctx = _patient_context(request, pid)
        if ctx is None:
            return render(request, "error.html", 404, title="Not found", message="No such patient.")
        where = exc.field if isinstance(exc, SignOffError) else "outcome"
        return render(request, "clinic/patient.html", 400, **ctx, invite_link=None,
                      upload_errors=[], signoff=_signoff_form(outcome, code, reason,
                                                              {where: str(exc)}))
    return RedirectResponse(f"/clinic/patients/{pid}?notice=signed#signoff-h", status_code=303)


@router.post("/clinic/patients/{pid}/note", response_class=HTMLResponse)
def add_note(request: Request, pid: int, user: User = Depends(staff_user),
             posted: FormData = Depends(checked_form)) -> Response:
    try:
        aid = int(field(posted, "assessment_id"))
        clinic(request).add_note(user, pid, aid, field(posted, "note"))
    except (ValueError, ClinicError) as exc:
        msg = str(exc) if isinstance(exc, ClinicError) else "No such screening."
        return render(request, "error.html", 400, title="Note not saved", message=msg)
    return RedirectResponse(f"/clinic/patients/{pid}?notice=note", status_code=303)


@router.get("/clinic/patients/{pid}/report", response_class=HTMLResponse)
def report(request: Request, pid: int, assessment: int | None = None,
           user: User = Depends(staff_user)) -> Response:
    ctx = _patient_context(request, pid, assessment)
    if ctx is None or ctx["shown"] is None:
        return render(request, "error.html", 404, title="Not found",
                      message="No screening to report for this patient.")
    viewed(request, user, "report.view", pid, assessment=ctx["shown"].id)
    return render(request, "clinic/report.html", **ctx)


@router.post("/clinic/patients/{pid}/report/printed")
def report_printed(request: Request, pid: int, user: User = Depends(staff_user),
                   posted: FormData = Depends(checked_form)) -> Response:
    """The report page's script posts here when the browser prints it (``beforeprint``)."""
    aid = _int(field(posted, "assessment"))
    viewed(request, user, "report.print", pid, assessment=aid)
    return Response(status_code=204)
