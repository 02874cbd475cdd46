"""Free text answering a question the knowledge base marks ``about: past`` is history: "Breast
cancer" after "Have you ever had cancer in the past?" is a past cancer, not active cancer."""

from __future__ import annotations

from typing import Any

from msc_screen import screen
from msc_screen.engine.evaluate import past_questions
from msc_screen.knowledge import get_ruleset


def _bundle(items: list[dict[str, Any]]) -> dict[str, Any]:
    qr = {"resourceType": "QuestionnaireResponse", "id": "qr-1", "status": "completed",
          "subject": {"reference": "Patient/p1"}, "authored": "2026-11-20T10:00:00Z",
          "item": items}
    pt = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970-05-01"}
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": pt}, {"resource": qr}]}


def _coding(code: str) -> dict[str, Any]:
    return {"valueCoding": {"code": code, "display": code}}


def _finding(a: Any, rule: str) -> Any:
    return next(f for f in a.findings if f.rule == rule)


def test_past_questions_come_from_the_knowledge_base() -> None:
    past = past_questions(get_ruleset(None))
    assert {"cancer-past", "cancer-past-type", "cancer-past-year"} <= past
    assert "cancer-now-type" not in past and "cancer-now" not in past


def test_past_cancer_type_is_history_not_active_cancer() -> None:
    a = screen(_bundle([
        {"linkId": "cancer-now", "answer": [_coding("no")]},
        {"linkId": "cancer-past", "answer": [_coding("yes")]},
        {"linkId": "cancer-past-type", "answer": [{"valueString": "Breast cancer"}]},
        {"linkId": "cancer-past-year", "answer": [{"valueDate": "2023-11-15"}]},
    ]), as_of="2026-11-24")
    active = _finding(a, "active-malignancy")
    assert active.status == "absent", active
    history = _finding(a, "history-of-malignancy")
    assert history.status == "present"
    refs = {e.reference for e in history.evidence}
    assert any(r.endswith("#cancer-past-type") for r in refs), refs


def test_current_cancer_type_is_still_read_as_current() -> None:
    """The same words answering the question about now still count as a current mention."""
    a = screen(_bundle([
        {"linkId": "cancer-now", "answer": [_coding("unsure")]},
        {"linkId": "cancer-now-type", "answer": [{"valueString": "Breast cancer"}]},
        {"linkId": "cancer-past", "answer": [_coding("no")]},
    ]), as_of="2026-11-24")
    active = _finding(a, "active-malignancy")
    assert active.status == "present"
    assert any(e.reference.endswith("#cancer-now-type") for e in active.evidence)
