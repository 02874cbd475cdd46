"""The terminal report says what data the screening had, and what it lacked."""

from __future__ import annotations

from rich.console import Console

import msc_screen
from msc_screen.model import KindCoverage
from msc_screen.render.text import render_assessment

PATIENT = {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1970-01-01"}


def _text(a: msc_screen.model.Assessment) -> str:
    console = Console(record=True, width=200)
    render_assessment(a, console)
    return console.export_text()


def test_kinds_not_provided_and_incomplete_are_shown() -> None:
    records, _ = msc_screen.api.load_records([PATIENT])
    records[0].declared["medications"] = KindCoverage("incomplete", "medications: timeout")
    a = msc_screen.screen_records(records, as_of="2026-01-01")[0]
    out = _text(a)
    assert "NEEDS-INFORMATION" in out
    assert "conditions not provided" in out
    assert "medications INCOMPLETE (medications: timeout)" in out
    assert "demographics 1" in out


def test_unanswered_questions_are_listed() -> None:
    qr = {"resourceType": "QuestionnaireResponse", "id": "q", "status": "completed",
          "subject": {"reference": "Patient/p"}, "authored": "2025-12-30",
          "item": [{"linkId": "cancer-now", "answer": [{"valueCoding": {"code": "no"}}]}]}
    a = msc_screen.screen([PATIENT, qr], as_of="2026-01-01")
    out = _text(a)
    assert "not answered:" in out and "clot-now" in out
    assert "cancer-now," not in out.split("not answered:")[1]
