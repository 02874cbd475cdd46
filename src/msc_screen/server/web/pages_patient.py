"""The patient's pages, reached only through an invitation link token.

Everything is looked up from the token: the pages take no patient or response id, so one
link can only ever show and change its own form. The answers are re-validated (types,
options, enableWhen) on every post.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from ...knowledge.schema import Question
from ...questionnaire import FormDef, answers_from_response, enabled_questions, parse_form
from ...questionnaire.build import Section
from ...store.clinic_models import StoredAssessment
from .clinic import ClinicError, rule_definition
from .coverage_view import unanswered_questions
from .deps import checked_form, clinic, field, render

router = APIRouter()


def _bad_link(request: Request) -> HTMLResponse:
    return render(request, "patient/bad_link.html", 404)


def _used_link(request: Request) -> HTMLResponse:
    return render(request, "patient/used_link.html", 410)


def _load(request: Request, token: str) -> tuple[str, FormDef, dict[str, Any]] | Response:
    c = clinic(request)
    with c.read() as s:
        inv = c.invitation(s, token)
        if inv is None:
            return _bad_link(request)
        if inv.used_at is not None:
            return _used_link(request)
        row = c.saved_response(s, inv)
        form = c.form(s)
        answers = answers_from_response(form, row.resource) if row else {}
    return token, form, answers


def _section_view(form: FormDef, sec: Section, answers: dict[str, Any]) -> list[dict[str, Any]]:
    """Each question with its saved value and, for follow-ups, when to answer it."""
    enabled = {q.link_id for q in enabled_questions(form, answers)}
    out = []
    for q in sec.questions:
        hint = None
        if q.enable_when:
            parts = []
            for ew in q.enable_when:
                trig = form.by_id.get(ew.question)
                shown = ew.answer
                if trig is not None and trig.options:
                    shown = next((o.display for o in trig.options if o.code == ew.answer),
                                 ew.answer)
                elif isinstance(ew.answer, bool):
                    shown = "Yes" if ew.answer else "No"
                parts.append(f"“{shown}” to “{trig.text if trig else ew.question}”")
            hint = "Answer only if you answered " + " and ".join(parts) + "."
        out.append({"q": q, "value": answers.get(q.link_id), "hint": hint,
                    "when": _when(q, {x.link_id for x in sec.questions}),
                    "follow_up": bool(q.enable_when), "enabled": q.link_id in enabled})
    return out


def _when(q: Question, here: set[str]) -> dict[str, str] | None:
    """A single same-section condition the page script can apply (the server re-checks)."""
    if len(q.enable_when) != 1:
        return None
    ew = q.enable_when[0]
    if ew.question not in here or ew.operator not in ("=", "!=", "exists"):
        return None
    a = ew.answer
    shown = ("true" if a else "false") if isinstance(a, bool) else ("" if a is None else str(a))
    return {"q": ew.question, "op": ew.operator, "a": shown}


@router.get("/safety", response_class=HTMLResponse)
def safety(request: Request) -> HTMLResponse:
    return render(request, "patient/safety.html")


@router.get("/p/{token}", response_class=HTMLResponse)
def start(request: Request, token: str) -> Response:
    got = _load(request, token)
    if isinstance(got, Response):
        return got
    _, form, answers = got
    done = [all(q.link_id in answers for q in s.questions
                if q.required and q in enabled_questions(form, answers)) and
            any(q.link_id in answers for q in s.questions) for s in form.sections]
    return render(request, "patient/start.html", token=token, sections=form.sections,
                  done=done, started=bool(answers))


@router.get("/p/{token}/section/{n}", response_class=HTMLResponse)
def section(request: Request, token: str, n: int) -> Response:
    got = _load(request, token)
    if isinstance(got, Response):
        return got
    _, form, answers = got
    if not 0 <= n < len(form.sections):
        return _bad_link(request)
    sec = form.sections[n]
    return render(request, "patient/section.html", token=token, n=n, total=len(form.sections),
                  section=sec, items=_section_view(form, sec, answers), errors={})


@router.post("/p/{token}/section/{n}", response_class=HTMLResponse)
def save_section(request: Request, token: str, n: int,
                 posted: FormData = Depends(checked_form)) -> Response:
    got = _load(request, token)
    if isinstance(got, Response):
        return got
    _, form, answers = got
    if not 0 <= n < len(form.sections):
        return _bad_link(request)
    sec = form.sections[n]
    ids = {q.link_id for q in sec.questions}
    # This section's fields replace its saved answers; other sections keep theirs.
    merged: dict[str, str] = {k: _raw(v) for k, v in answers.items() if k not in ids}
    merged.update({k: field(posted, k) for k in ids})
    new_answers, errors = parse_form(form, merged, final=False)
    errs = {e.link_id: e.message for e in errors if e.link_id in ids}
    if errs:
        return render(request, "patient/section.html", 422, token=token, n=n,
                      total=len(form.sections), section=sec,
                      items=_section_view(form, sec, {**new_answers, **{
                          k: merged.get(k) for k in errs}}), errors=errs)
    try:
        clinic(request).save_answers(token, new_answers, final=False)
    except ClinicError:
        return _used_link(request)
    action = field(posted, "action")
    if action == "later":
        return render(request, "patient/saved.html", token=token)
    if action == "back":
        target = f"/p/{token}/section/{n - 1}" if n > 0 else f"/p/{token}"
    elif n + 1 < len(form.sections):
        target = f"/p/{token}/section/{n + 1}"
    else:
        target = f"/p/{token}/review"
    return RedirectResponse(target, status_code=303)


def _raw(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _review_rows(form: FormDef, answers: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    enabled = enabled_questions(form, answers)
    for i, s in enumerate(form.sections):
        for q in s.questions:
            if q not in enabled:
                continue
            v = answers.get(q.link_id)
            if v is not None and q.options:
                v = next((o.display for o in q.options if o.code == v), v)
            elif isinstance(v, bool):
                v = "Yes" if v else "No"
            rows.append({"section": s.title, "n": i, "q": q, "value": v})
    return rows


@router.get("/p/{token}/review", response_class=HTMLResponse)
def review(request: Request, token: str) -> Response:
    got = _load(request, token)
    if isinstance(got, Response):
        return got
    _, form, answers = got
    _, errors = parse_form(form, {k: _raw(v) for k, v in answers.items()}, final=True)
    return render(request, "patient/review.html", token=token, rows=_review_rows(form, answers),
                  missing={e.link_id for e in errors}, total=len(form.sections))


@router.post("/p/{token}/submit", response_class=HTMLResponse)
def submit(request: Request, token: str, posted: FormData = Depends(checked_form)) -> Response:
    got = _load(request, token)
    if isinstance(got, Response):
        return got
    _, form, answers = got
    final, errors = parse_form(form, {k: _raw(v) for k, v in answers.items()}, final=True)
    if errors:
        return render(request, "patient/review.html", 422, token=token,
                      rows=_review_rows(form, answers), missing={e.link_id for e in errors},
                      total=len(form.sections))
    try:
        stored = clinic(request).save_answers(token, final, final=True)
    except ClinicError:
        return _used_link(request)
    assert stored is not None
    return render(request, "patient/result.html", **patient_result(stored, form))


def patient_result(stored: StoredAssessment, form: FormDef | None = None) -> dict[str, Any]:
    """What the patient is told: the rules' own patient text for what was found, and the
    questions they left blank ("not answered": the clinic may ask), in neutral words. Never a
    verdict on whether treatment is possible."""
    doc: dict[str, Any] = stored.document
    discuss, ask = [], []
    for f in doc.get("findings", []):
        if f.get("status") == "present" and f.get("severity") in ("contraindicated",
                                                                  "physician-review"):
            rule = rule_definition(f["rule"])
            discuss.append({"title": f.get("title"), "text": rule.patient_text if rule else None})
        elif f.get("status") == "unknown" and f.get("severity") == "needs-information":
            ask.append({"title": f.get("title")})
    return {"discuss": discuss, "ask": ask, "unanswered": unanswered_questions(doc, form)}
