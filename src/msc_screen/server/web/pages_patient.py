"""The patient's pages, reached only through an invitation link token.

Everything is looked up from the token: the pages take no patient or response id, so one
link can only ever show and change its own form. The answers are re-validated (types,
options, enableWhen) on every post.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from ...knowledge.schema import Question
from ...questionnaire import (
    FormDef,
    answers_from_response,
    context_answers,
    enabled_questions,
    parse_form,
)
from ...questionnaire.build import Section
from ...store.clinic_models import Invitation, Patient, StoredAssessment
from .clinic import ClinicError, rule_definition
from .coverage_view import unanswered_questions
from .deps import checked_form, clinic, field, render

router = APIRouter()


def _bad_link(request: Request) -> HTMLResponse:
    return render(request, "patient/bad_link.html", 404)


def _used_link(request: Request) -> HTMLResponse:
    return render(request, "patient/used_link.html", 410)


Loaded = tuple[dict[str, Any], FormDef, dict[str, Any]]


def _load(request: Request, token: str) -> Loaded | Response:
    """(the pre-filled patient items, the form, the saved answers) for an open link."""
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
        p = s.get(Patient, inv.patient_id)
        ctx = context_answers(p.gender if p else None, p.birth_date if p else None,
                              c.now().date())
    return ctx, form, answers


def _shown(form: FormDef, sec: Section, ctx: dict[str, Any]) -> list[Any]:
    """The section's questions this patient is asked at all: the pre-filled sex and age
    decide here; answers on the page decide the rest (in the browser, and on the server)."""
    return [q for q in sec.questions if _context_allows(form, q, ctx)]


def _asked(form: FormDef, ctx: dict[str, Any]) -> list[int]:
    """The sections with at least one question this patient is asked (a man never sees the
    pregnancy section)."""
    return [i for i, sec in enumerate(form.sections) if _shown(form, sec, ctx)]


def _after(form: FormDef, ctx: dict[str, Any], n: int, step: int) -> int | None:
    asked = _asked(form, ctx)
    later = [i for i in asked if (i > n if step > 0 else i < n)]
    return (later[0] if step > 0 else later[-1]) if later else None


def _context_allows(form: FormDef, q: Any, ctx: dict[str, Any]) -> bool:
    from ...questionnaire.response import _condition_met

    return all(_condition_met(ew, ctx, form.context_ids) for ew in q.enable_when
               if ew.question in form.context_ids)


def _section_view(form: FormDef, sec: Section, answers: dict[str, Any],
                  ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Each question this patient is asked, with its saved value and, for follow-ups, when
    to answer it."""
    enabled = {q.link_id for q in enabled_questions(form, answers, ctx)}
    out = []
    for q in _shown(form, sec, ctx):
        hint = None
        own = [ew for ew in q.enable_when if ew.question not in form.context_ids]
        if own:
            parts = []
            for ew in own:
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
                    "when": _when(q, {x.link_id for x in sec.questions}, form.context_ids),
                    "follow_up": bool(own), "enabled": q.link_id in enabled,
                    "range": _range(q)})
    return out


def _range(q: Question) -> dict[str, Any]:
    """min/max for the page (the server checks them again)."""
    out: dict[str, Any] = {}
    if q.type in ("integer", "decimal"):
        if q.min_value is not None:
            out["min"] = f"{q.min_value:g}"
        if q.max_value is not None:
            out["max"] = f"{q.max_value:g}"
    return out


def _when(q: Question, here: set[str], context: frozenset[str]) -> dict[str, str] | None:
    """A single same-section condition the page script can apply (the server re-checks)."""
    own = [ew for ew in q.enable_when if ew.question not in context]
    if len(own) != 1:
        return None
    ew = own[0]
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
    ctx, form, answers = got
    on = enabled_questions(form, answers, ctx)
    done = [all(q.link_id in answers for q in s.questions if q.required and q in on) and
            (any(q.link_id in answers for q in s.questions)
             or not any(q in on for q in s.questions)) for s in form.sections]
    asked = _asked(form, ctx)
    first = next((i for i in asked if not done[i]), None)
    target = f"/p/{token}/review" if first is None else f"/p/{token}/section/{first}"
    return render(request, "patient/start.html", token=token,
                  sections=[(i, form.sections[i], done[i]) for i in asked],
                  started=bool(answers), target=target,
                  first=f"/p/{token}/section/{asked[0] if asked else 0}",
                  clinic_cfg=clinic(request).config)


@router.get("/p/{token}/section/{n}", response_class=HTMLResponse)
def section(request: Request, token: str, n: int, back: str = "") -> Response:
    got = _load(request, token)
    if isinstance(got, Response):
        return got
    ctx, form, answers = got
    if not 0 <= n < len(form.sections):
        return _bad_link(request)
    sec = form.sections[n]
    asked = _asked(form, ctx)
    if n not in asked:
        nxt = _after(form, ctx, n, 1)
        return RedirectResponse(f"/p/{token}/section/{nxt}" if nxt is not None
                                else f"/p/{token}/review", status_code=303)
    return render(request, "patient/section.html", token=token, n=n, total=len(form.sections),
                  section=sec, items=_section_view(form, sec, answers, ctx), errors={},
                  back_to_review=back == "review", **_progress(asked, n))


def _progress(asked: list[int], n: int) -> dict[str, Any]:
    """Position among the sections this patient is asked, and whether one comes after."""
    return {"step": asked.index(n) + 1 if n in asked else 1, "steps": len(asked) or 1,
            "first_step": not asked or n == asked[0], "last_step": not asked or n == asked[-1]}


@router.post("/p/{token}/section/{n}", response_class=HTMLResponse)
def save_section(request: Request, token: str, n: int,
                 posted: FormData = Depends(checked_form)) -> Response:
    got = _load(request, token)
    if isinstance(got, Response):
        return got
    ctx, form, answers = got
    if not 0 <= n < len(form.sections):
        return _bad_link(request)
    sec = form.sections[n]
    ids = {q.link_id for q in sec.questions}
    action = field(posted, "action")
    to_review = field(posted, "return") == "review"
    # This section's fields replace its saved answers; other sections keep theirs.
    merged: dict[str, str] = {k: _raw(v) for k, v in answers.items() if k not in ids}
    merged.update({k: field(posted, k) for k in ids})
    # going on checks this page's required answers; "back" and "later" keep what parses
    new_answers, errors = parse_form(form, merged, final=action == "next", context=ctx,
                                     today=clinic(request).now().date(), required_in=ids)
    errs = {e.link_id: e.message for e in errors if e.link_id in ids}
    if errs:
        return render(request, "patient/section.html", 422, token=token, n=n,
                      total=len(form.sections), section=sec,
                      items=_section_view(form, sec, {**new_answers, **{
                          k: merged.get(k) for k in errs}}, ctx), errors=errs,
                      back_to_review=to_review, **_progress(_asked(form, ctx), n))
    try:
        clinic(request).save_answers(token, new_answers, final=False)
    except ClinicError:
        return _used_link(request)
    if action == "later":
        return RedirectResponse(f"/p/{token}/saved", status_code=303)
    if to_review and action == "next":
        target = f"/p/{token}/review"
    elif action == "back":
        prev = _after(form, ctx, n, -1)
        target = f"/p/{token}/section/{prev}" if prev is not None else f"/p/{token}"
    else:
        nxt = _after(form, ctx, n, 1)
        target = f"/p/{token}/section/{nxt}" if nxt is not None else f"/p/{token}/review"
    return RedirectResponse(target, status_code=303)


def _raw(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@router.get("/p/{token}/saved", response_class=HTMLResponse)
def saved(request: Request, token: str) -> Response:
    got = _load(request, token)
    if isinstance(got, Response):
        return got
    return render(request, "patient/saved.html", token=token)


def _review_rows(form: FormDef, answers: dict[str, Any],
                 ctx: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rows = []
    enabled = enabled_questions(form, answers, ctx)
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
    ctx, form, answers = got
    _, errors = parse_form(form, {k: _raw(v) for k, v in answers.items()}, final=True,
                           context=ctx, today=clinic(request).now().date())
    return render(request, "patient/review.html", token=token,
                  rows=_review_rows(form, answers, ctx),
                  missing={e.link_id for e in errors}, total=len(form.sections))


@router.post("/p/{token}/submit", response_class=HTMLResponse)
def submit(request: Request, token: str, posted: FormData = Depends(checked_form)) -> Response:
    got = _load(request, token)
    if isinstance(got, Response):
        return got
    ctx, form, answers = got
    final, errors = parse_form(form, {k: _raw(v) for k, v in answers.items()}, final=True,
                               context=ctx, today=clinic(request).now().date())
    if errors:
        return render(request, "patient/review.html", 422, token=token,
                      rows=_review_rows(form, answers, ctx),
                      missing={e.link_id for e in errors}, total=len(form.sections))
    try:
        clinic(request).save_answers(token, final, final=True)
    except ClinicError:
        return _used_link(request)
    return RedirectResponse(f"/p/{token}/done", status_code=303)


@router.get("/p/{token}/done", response_class=HTMLResponse)
def done(request: Request, token: str) -> Response:
    """The thank-you page, again on refresh, until the link would have expired; the answers
    as sent, to print."""
    c = clinic(request)
    with c.read() as s:
        inv = c.invitation(s, token)
        if inv is None:
            return _bad_link(request)
        if inv.used_at is None:
            return RedirectResponse(f"/p/{token}", status_code=303)
        if _expired(c, inv):
            return _used_link(request)
        stored = s.scalar(select(StoredAssessment).where(
            StoredAssessment.patient_id == inv.patient_id,
            StoredAssessment.trigger == "questionnaire",
            StoredAssessment.created_at >= inv.used_at)
            .order_by(StoredAssessment.id).limit(1))
        row = c.saved_response(s, inv)
        form = c.form(s)
        p = s.get(Patient, inv.patient_id)
        ctx = context_answers(p.gender if p else None, p.birth_date if p else None,
                              c.now().date())
    if stored is None or row is None:
        return _used_link(request)
    answers = answers_from_response(form, row.resource)
    return render(request, "patient/result.html", **patient_result(stored, form),
                  rows=_review_rows(form, answers, ctx), clinic_cfg=c.config)


def _expired(c: Any, inv: Invitation) -> bool:
    from .clinic import _aware

    return bool(_aware(inv.expires_at) <= c.now())


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
            discuss.append({"title": _plain_title(f), "text": rule.patient_text if rule else None})
        elif f.get("status") == "unknown" and f.get("severity") == "needs-information":
            ask.append({"title": _plain_title(f)})
    return {"discuss": discuss, "ask": ask, "unanswered": unanswered_questions(doc, form)}


def _plain_title(f: dict[str, Any]) -> str:
    """The rule's plain-language ``patient_title`` (knowledge base), else its title."""
    rule = rule_definition(f["rule"])
    return (rule.patient_title if rule and rule.patient_title else None) or str(f.get("title"))
