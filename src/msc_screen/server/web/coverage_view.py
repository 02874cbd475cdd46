"""What a stored screening had to go on, in words for the pages: each kind of data (provided,
not provided, incomplete, with the reason), each question the rules need (answered or not),
and, for a finding the engine left unknown for lack of data, which data would have decided
it. Display only: the engine's coverage in the stored assessment is the source; nothing
here changes a status or a decision."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ...engine.coverage import ANSWER
from ...knowledge import get_ruleset
from ...questionnaire import FormDef

STATUS_WORDS = {"provided": "Provided", "not-provided": "Not provided",
                "incomplete": "Incomplete"}
NOT_ANSWERED = "Not answered"


@lru_cache(maxsize=1)
def _kinds() -> tuple[dict[str, tuple[str, bool]], dict[str, tuple[frozenset[str], ...]]]:
    """Kind id -> (title, clinical), and rule id -> its ``needs`` alternatives (both
    knowledge-base data, the same under every policy)."""
    rs = get_ruleset(None)
    kinds = {k.id: (k.title, k.clinical) for k, _ in rs.coverage}
    needs = {r.id: r.needs for r in rs.rules}
    return kinds, needs


def kind_title(kind: str) -> str:
    return _kinds()[0].get(kind, (kind, True))[0]


def _coverage(doc: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    cov = doc.get("coverage")
    return cov if isinstance(cov, dict) and cov else None


def has_clinical_data(doc: dict[str, Any]) -> bool:
    """Whether the screening was given any clinical data (False when its coverage was not
    recorded: a screening stored before coverage existed proves nothing about its data)."""
    cov = _coverage(doc)
    if cov is None:
        return False
    kinds = _kinds()[0]
    return any(v.get("status") == "provided" for k, v in cov.items()
               if k in kinds and kinds[k][1])


def question_text(form: FormDef | None, link_id: str) -> str:
    q = form.by_id.get(link_id) if form is not None else None
    return q.text if q is not None else link_id


def coverage_view(doc: dict[str, Any], form: FormDef | None) -> dict[str, Any]:
    """Rows for the coverage panel."""
    cov = _coverage(doc)
    if cov is None:
        return {"recorded": False, "kinds": [], "questions": [], "no_clinical": True,
                "incomplete": False}
    kinds, questions = [], []
    for k, v in cov.items():
        status = str(v.get("status", ""))
        if k.startswith(ANSWER):
            link = k[len(ANSWER):]
            words = ("Answered" if status == "provided" else
                     NOT_ANSWERED if status == "not-provided" else STATUS_WORDS.get(status, status))
            questions.append({"link_id": link, "text": question_text(form, link),
                              "status": status, "words": words,
                              "reason": None if status == "not-provided" else v.get("reason")})
        else:
            kinds.append({"kind": k, "title": kind_title(k), "status": status,
                          "words": STATUS_WORDS.get(status, status), "count": v.get("count"),
                          "reason": v.get("reason")})
    return {"recorded": True, "kinds": kinds, "questions": questions,
            "no_clinical": not has_clinical_data(doc),
            "incomplete": any(r["status"] == "incomplete" for r in kinds + questions)}


def _need_words(kind: str, cov: dict[str, dict[str, Any]], form: FormDef | None) -> str:
    v = cov.get(kind)
    status = str((v or {}).get("status", "not-provided"))
    if kind.startswith(ANSWER):
        q = question_text(form, kind[len(ANSWER):])
        how = ("no questionnaire was completed" if v is None else
               "not answered" if status == "not-provided" else status)
        return f"the patient's answer to “{q}”: {how}"
    how = "not provided" if status == "not-provided" else status
    reason = (v or {}).get("reason")
    return f"{kind_title(kind)}: {how}{f' ({reason})' if reason else ''}"


def finding_data(f: dict[str, Any], doc: dict[str, Any], form: FormDef | None
                 ) -> dict[str, Any]:
    """For one finding: ``lacking`` — when no alternative of the data its rule needs was wholly
    provided, each alternative in words (so an unknown finding says plainly that data was
    missing, and which would have decided it); ``unanswered`` — the questions it reads that the
    patient left blank (shown as "not answered", whatever the finding's status)."""
    cov = _coverage(doc)
    needs = _kinds()[1].get(str(f.get("rule")), ())
    if cov is None or not needs:
        return {"lacking": [], "unanswered": []}
    lacking: list[str] = []
    if f.get("status") == "unknown" and not f.get("evidence") and not any(
            all((cov.get(k) or {}).get("status") == "provided" for k in alt) for alt in needs):
        for alt in needs:
            parts = [_need_words(k, cov, form) for k in sorted(alt)
                     if (cov.get(k) or {}).get("status") != "provided"]
            lacking.append(" and ".join(parts))
    unanswered = [question_text(form, k[len(ANSWER):]) for alt in needs for k in sorted(alt)
                  if k.startswith(ANSWER) and (cov.get(k) or {}).get("status") == "not-provided"]
    return {"lacking": lacking, "unanswered": list(dict.fromkeys(unanswered))}


def unanswered_questions(doc: dict[str, Any], form: FormDef | None) -> list[str]:
    """The questions some rule reads that the patient left blank, in the form's words."""
    cov = _coverage(doc) or {}
    return [question_text(form, k[len(ANSWER):]) for k, v in cov.items()
            if k.startswith(ANSWER) and v.get("status") == "not-provided"]
