"""Pathological notes finish (bounded work per mention, capped mentions per rule). The time
figures themselves are printed by benchmarks/notes_throughput.py, not asserted here."""

from __future__ import annotations

import pytest

from msc_screen.notes import get_extractor
from msc_screen.notes.extractor import MAX_MENTIONS_PER_RULE


@pytest.mark.timeout(300)
@pytest.mark.parametrize("text", [
    ("denies pregnancy and has cancer with DVT " * 26000)[:1_000_000],  # one 1 MB line
    "pregnant " * 120_000,  # a mention every 9 characters
    "a" * 1_000_000,  # no spaces at all
    ",A:" * 300_000,  # heading-like separators
    "Dr. " * 250_000,  # abbreviations everywhere
    "(((" * 300_000 + "not pregnant",
])
def test_pathological_notes_complete(text: str) -> None:
    ms = get_extractor().extract(text)
    per_rule: dict[str, int] = {}
    for m in ms:
        per_rule[m.rule] = per_rule.get(m.rule, 0) + 1
        assert text[m.span[0]:m.span[1]] == m.text
    assert all(n <= MAX_MENTIONS_PER_RULE for n in per_rule.values())


def test_long_sentences_are_chunked_but_context_is_kept() -> None:
    text = "word " * 5000 + "She denies pregnancy." + " word" * 5000
    [m] = [m for m in get_extractor().extract(text) if m.rule == "pregnancy"]
    assert m.negated
    assert len(m.snippet or "") <= 260
