"""Every shared MTSamples note processes; spot checks on real sentences from them."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from msc_screen.notes import get_extractor

pytestmark = pytest.mark.xdist_group("mtsamples-notes")


@pytest.fixture(scope="module")
def notes(mtsamples_file: Path) -> dict[str, str]:
    with gzip.open(mtsamples_file) as fh:
        return {d["id"]: d["text"] for d in map(orjson.loads, fh)}


@pytest.mark.slow
def test_every_note_processes(notes: dict[str, str]) -> None:
    x = get_extractor()
    total = 0
    for nid, text in notes.items():
        ms = x.extract(text)
        for m in ms:
            assert text[m.span[0]:m.span[1]] == m.text, nid
        total += len(ms)
    assert len(notes) >= 4000
    assert total > 5000  # the vocabulary does find contraindication mentions


def _find(notes: dict[str, str], nid: str, sentence: str) -> tuple[str, int]:
    text = notes[nid]
    i = text.find(sentence)
    assert i >= 0, f"{nid}: sentence not found"
    return text, i


@pytest.mark.parametrize(("nid", "sentence", "word", "flags"), [
    ("mts-1452", "Her sister had breast cancer.", "cancer", {"family", "historical"}),
    ("mts-2972", "His father died from breast cancer.", "cancer", {"family", "historical"}),
    ("mts-53", "Mother had a history of breast cancer.", "cancer", {"family", "historical"}),
    ("mts-1446", "Show no evidence of DVT, acute arthritis, cellulitis or pedal edema.",
     "cellulitis", {"negated"}),
    ("mts-2851", "showed no evidence of deep venous thrombosis", "deep venous thrombosis",
     {"negated"}),
    ("mts-111", "Curettings were negative for malignancy.", "malignancy", {"negated"}),
    ("mts-3439", "New requirement for oxygen, rule out pneumonia.", "pneumonia", {"uncertain"}),
])
def test_spot_checks(notes: dict[str, str], nid: str, sentence: str, word: str,
                     flags: set[str]) -> None:
    text, i = _find(notes, nid, sentence)
    at = i + sentence.index(word)
    found = [m for m in get_extractor().extract(text) if m.span[0] == at]
    assert found, f"{nid}: no mention of {word!r}"
    for m in found:
        got = {f for f in ("negated", "historical", "family", "hypothetical", "uncertain")
               if getattr(m, f)}
        assert got == flags, (m.rule, got)
