"""Submitted answers → validated values → FHIR QuestionnaireResponse, and back.

The browser's view of which questions are shown is never trusted: ``enabled_questions``
re-evaluates every ``enableWhen`` here, and answers to disabled questions are dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..knowledge.schema import EnableWhen, Question
from .build import ANSWER_SYSTEM, QUESTIONNAIRE_URL, FormDef

Answers = dict[str, Any]  # link_id -> bool | str (choice code / text) | int | float | date ISO


@dataclass(frozen=True)
class FieldError:
    link_id: str
    message: str


def _in_range(q: Question, v: float) -> None:
    lo, hi = q.min_value, q.max_value
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        shown = [f"{x:g}" for x in (lo, hi) if x is not None]
        if lo is not None and hi is not None:
            raise ValueError(f"Enter a number from {shown[0]} to {shown[1]}.")
        raise ValueError(f"Enter a number of at least {shown[0]}." if lo is not None
                         else f"Enter a number of at most {shown[0]}.")


def _parse_value(q: Question, raw: str, today: dt.date | None = None) -> Any:
    """The typed value of one form field, within the question's range; raises ValueError
    with a plain-language message."""
    raw = raw.strip()
    if q.type == "boolean":
        if raw in ("true", "yes"):
            return True
        if raw in ("false", "no"):
            return False
        raise ValueError("Choose yes or no.")
    if q.type == "choice":
        if raw in {o.code for o in q.options}:
            return raw
        raise ValueError("Choose one of the options.")
    if q.type == "integer":
        if not re.fullmatch(r"-?[0-9]{1,9}", raw):
            raise ValueError("Enter a whole number, for example 12.")
        n = int(raw)
        _in_range(q, n)
        return n
    if q.type == "decimal":
        try:
            x = float(raw)
        except ValueError:
            raise ValueError("Enter a number, for example 2.5.") from None
        if x != x or abs(x) > 1e9:
            raise ValueError("Enter a number, for example 2.5.")
        _in_range(q, x)
        return x
    if q.type == "date":
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            raise ValueError("Enter a date as year-month-day, for example 2024-03-01.") from None
        if q.not_in_future and today is not None and day > today:
            raise ValueError("Enter a date that is not in the future.")
        if day.year < 1900:
            raise ValueError("Enter a date after 1900.")
        return day.isoformat()
    if len(raw) > 2000:
        raise ValueError("Please keep this answer under 2,000 characters.")
    return raw


def _compare(have: Any, op: str, want: Any) -> bool:
    if op == "=":
        return bool(have == want)
    if op == "!=":
        return bool(have != want)
    try:
        if op == ">":
            return bool(have > want)
        if op == "<":
            return bool(have < want)
        if op == ">=":
            return bool(have >= want)
        if op == "<=":
            return bool(have <= want)
    except TypeError:
        return False
    return False


def _condition_met(ew: EnableWhen, answers: Answers, context: frozenset[str] = frozenset()
                   ) -> bool:
    have = answers.get(ew.question)
    if have is None and ew.question in context:
        return True  # the clinic did not record it: missing sex or age never hides a question
    if ew.operator == "exists":
        wanted = True if ew.answer is None else bool(ew.answer)
        return (have is not None) == wanted
    if have is None:
        return False
    want = ew.answer
    if isinstance(have, bool) or isinstance(want, bool):
        if isinstance(want, str):
            want = want.lower() in ("true", "yes")
        return _compare(have, ew.operator, want)
    if isinstance(have, int | float) and isinstance(want, str):
        try:
            want = float(want)
        except ValueError:
            return False
    if isinstance(want, dt.date):
        want = want.isoformat()
    return _compare(have, ew.operator, want if not isinstance(have, str) else str(want))


def context_answers(gender: str | None, birth_date: str | None, today: dt.date) -> Answers:
    """The pre-filled patient items (``patient-sex``, ``patient-age``) from the clinic's
    demographics; what it did not record is left out."""
    out: Answers = {}
    if gender:
        out["patient-sex"] = gender
    if birth_date:
        try:
            b = dt.date.fromisoformat(birth_date)
        except ValueError:
            return out
        out["patient-age"] = today.year - b.year - ((today.month, today.day) < (b.month, b.day))
    return out


def enabled_questions(form: FormDef, answers: Answers, context: Answers | None = None
                      ) -> list[Question]:
    """Questions enabled by ``answers`` (and the pre-filled ``context``), in order; a
    question whose trigger is itself disabled is disabled too (its trigger's answer does not
    count)."""
    live: Answers = {k: v for k, v in (context or {}).items() if k in form.context_ids}
    cids = form.context_ids
    out: list[Question] = []
    for q in form.questions:
        if all(_condition_met(ew, live, cids) for ew in q.enable_when):
            out.append(q)
            if q.link_id in answers:
                live[q.link_id] = answers[q.link_id]
    return out


def parse_form(form: FormDef, data: Mapping[str, str], *, final: bool,
               context: Answers | None = None, today: dt.date | None = None,
               required_in: set[str] | None = None) -> tuple[Answers, list[FieldError]]:
    """Typed answers to the enabled questions in ``data`` (field name = link_id).

    ``final`` enforces required questions (``required_in``: only those link ids, one page's);
    a partial save keeps whatever parses. Fields for unknown or disabled questions are
    ignored; values out of a question's range are errors."""
    raw: Answers = {}
    errors: list[FieldError] = []
    for q in form.questions:
        value = data.get(q.link_id)
        if value is None or not str(value).strip():
            continue
        try:
            raw[q.link_id] = _parse_value(q, str(value), today)
        except ValueError as exc:
            errors.append(FieldError(q.link_id, str(exc)))
    enabled = enabled_questions(form, raw, context)
    answers = {q.link_id: raw[q.link_id] for q in enabled if q.link_id in raw}
    if final:
        bad = {e.link_id for e in errors}
        for q in enabled:
            if required_in is not None and q.link_id not in required_in:
                continue
            if q.required and q.link_id not in answers and q.link_id not in bad:
                errors.append(FieldError(q.link_id, "Please answer this question."))
    enabled_ids = {q.link_id for q in enabled}
    return answers, [e for e in errors if e.link_id in enabled_ids]


def _answer(q: Question, value: Any) -> dict[str, Any]:
    if q.type == "choice":
        display = next((o.display for o in q.options if o.code == value), str(value))
        return {"valueCoding": {"system": ANSWER_SYSTEM, "code": value, "display": display}}
    key = {"boolean": "valueBoolean", "integer": "valueInteger", "decimal": "valueDecimal",
           "date": "valueDate"}.get(q.type, "valueString")
    return {key: value}


def to_response(form: FormDef, answers: Answers, *, response_id: str, patient_ref: str,
                authored: dt.datetime, completed: bool, context: Answers | None = None
                ) -> dict[str, Any]:
    """A QuestionnaireResponse holding only answers to enabled questions."""
    enabled = {q.link_id for q in enabled_questions(form, answers, context)}
    groups = []
    for s in form.sections:
        items = [{"linkId": q.link_id, "text": q.text, "answer": [_answer(q, answers[q.link_id])]}
                 for q in s.questions if q.link_id in enabled and q.link_id in answers]
        if items:
            groups.append({"linkId": f"section-{s.slug}", "text": s.title, "item": items})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": response_id,
        "questionnaire": f"{QUESTIONNAIRE_URL}|{form.version}",
        "status": "completed" if completed else "in-progress",
        "subject": {"reference": patient_ref},
        "authored": authored.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "item": groups,
    }


def answers_from_response(form: FormDef, resource: Mapping[str, Any]) -> Answers:
    """The typed answers stored in a QuestionnaireResponse (to refill a saved form)."""
    out: Answers = {}

    def walk(items: list[Any]) -> None:
        for it in items:
            q = form.by_id.get(it.get("linkId", ""))
            for a in it.get("answer") or []:
                if q is None:
                    continue
                if "valueCoding" in a:
                    out[q.link_id] = a["valueCoding"].get("code")
                else:
                    for k, v in a.items():
                        if k.startswith("value"):
                            out[q.link_id] = v
            walk(it.get("item") or [])

    walk(list(resource.get("item") or []))
    return out
