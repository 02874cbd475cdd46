"""The extractor plugged into the engine: DocumentReference text, --note files and evidence."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from msc_screen import screen
from msc_screen.cli import app

AS_OF = "2024-06-01"


def _bundle(note: str) -> dict[str, Any]:
    data = base64.b64encode(note.encode()).decode()
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p1", "resource": {
            "resourceType": "Patient", "id": "p1", "gender": "female",
            "birthDate": "1992-03-04"}},
        {"fullUrl": "urn:uuid:d1", "resource": {
            "resourceType": "DocumentReference", "id": "d1", "status": "current",
            "subject": {"reference": "urn:uuid:p1"}, "date": "2024-05-30T10:00:00Z",
            "content": [{"attachment": {"contentType": "text/plain", "data": data}}]}},
    ]}


def _finding(a: Any, rule: str) -> Any:
    return next(f for f in a.findings if f.rule == rule)


def test_pregnancy_mention_in_a_document_reference_is_note_evidence() -> None:
    note = "HPI: 32 year old woman, currently 12 weeks pregnant, here for knee pain."
    a = screen(_bundle(note), as_of=AS_OF)
    f = _finding(a, "pregnancy")
    assert f.status == "present"
    notes_ev = [e for e in f.evidence if e.source == "note"]
    assert notes_ev, f.evidence
    ev = next(e for e in notes_ev if e.span and note[e.span[0]:e.span[1]] == "12 weeks pregnant")
    assert ev.reference == "DocumentReference/d1"
    assert "currently «12 weeks pregnant»," in (ev.text or "")
    assert ev.context is not None and ev.context["negated"] is False
    assert a.decision in ("contraindicated", "physician-review")
    d = orjson.loads(a.to_json())
    assert "analysed" in orjson.dumps(d).decode()
    assert "not analysed" not in orjson.dumps(d).decode()


def test_denied_and_relatives_mentions_do_not_count() -> None:
    note = ("Patient denies pregnancy. FAMILY HISTORY: Mother had breast cancer. "
            "No history of DVT.")
    a = screen(_bundle(note), as_of=AS_OF)
    for rule in ("pregnancy", "active-malignancy", "history-of-malignancy",
                 "active-thrombosis"):
        f = _finding(a, rule)
        assert not [e for e in f.evidence if e.source == "note"], (rule, f.evidence)


def test_screen_cli_shows_note_evidence_with_snippet_and_flags(tmp_path: Path) -> None:
    bundle = _bundle("Nothing relevant.")
    bundle["entry"] = bundle["entry"][:1]
    src = tmp_path / "patient.json"
    src.write_bytes(orjson.dumps(bundle))
    note = tmp_path / "visit.txt"
    note.write_text("ASSESSMENT: Possible pneumonia; she is 20 weeks pregnant.\n")
    r = CliRunner().invoke(app, ["screen", str(src), "--note", str(note), "--as-of", AS_OF])
    assert r.exit_code == 0, r.output
    assert "note:visit.txt" in r.stdout
    assert "20 weeks pregnant" in r.stdout
    assert "uncertain" in r.stdout  # the pneumonia mention's flag
    r = CliRunner().invoke(app, ["screen", str(src), "--note", str(note), "--as-of", AS_OF,
                                 "-f", "json"])
    d = orjson.loads(r.stdout)
    evs = [e for f in d["findings"] for e in f["evidence"] if e.get("source") == "note"]
    assert any(e["span"] and e["context"]["section"] == "assessment and plan" for e in evs)
