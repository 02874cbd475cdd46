"""Mention extraction: vocabulary matching, sections, sentence splitting, spans and snippets."""

from __future__ import annotations

import pytest

from msc_screen.notes import get_extractor
from msc_screen.notes.sections import default_sections
from msc_screen.notes.sentences import Sentences


def _mentions(text: str, rule: str | None = None) -> list:  # type: ignore[type-arg]
    return [m for m in get_extractor().extract(text) if rule is None or m.rule == rule]


def test_get_extractor_is_a_cached_singleton() -> None:
    assert get_extractor() is get_extractor()


def test_spans_point_at_the_mention_text() -> None:
    text = "HPI: 31F, G2P1, currently 12 weeks pregnant.  Denies DVT.  Mother had lymphoma."
    ms = _mentions(text)
    assert ms
    for m in ms:
        assert text[m.span[0]:m.span[1]] == m.text
        assert m.snippet and f"«{m.text}»" in m.snippet


def test_pregnancy_terms_patterns_and_obstetric_shorthand() -> None:
    ms = _mentions("G2P1 at 32 weeks. IUP confirmed, 8 wks gestation. She is pregant.",
                   "pregnancy")
    assert [m.text for m in ms] == ["G2P1 at 32 weeks", "IUP", "8 wks gestation", "pregant"]
    assert not any(m.negated or m.historical or m.family for m in ms)
    # obstetric shorthand alone is a history, not a current pregnancy
    assert _mentions("OB history: G2P1, last delivery 2015.", "pregnancy") == []


def test_abbreviations_are_case_sensitive_whole_words() -> None:
    assert [m.text for m in _mentions("Acute MI last week.", "recent-myocardial-infarction")
            ] == ["MI"]
    assert not _mentions("Admit for 3 mi walk; family is here.", "recent-myocardial-infarction")


def test_exclusions_and_plurals() -> None:
    assert not _mentions("CA-125 was drawn.", "active-malignancy")
    assert not _mentions("Started DVT prophylaxis.", "active-thrombosis")
    assert [m.text for m in _mentions("Multiple infections this year.", "active-infection")
            ] == ["infections"]
    assert not _mentions("She lives in a nursing home.", "breastfeeding")


def test_context_flags_on_mentions() -> None:
    text = ("PAST MEDICAL HISTORY: Myocardial infarction in 2015.\n"
            "FAMILY HISTORY: Mother had breast cancer.\n"
            "HPI: She denies chest pain. Possible pneumonia. Return if fever or cellulitis.")
    by_text = {m.text: m for m in _mentions(text)}
    mi = by_text["Myocardial infarction"]
    assert mi.historical and mi.section == "past medical history"
    assert by_text["cancer"].family and by_text["cancer"].section == "family history"
    assert by_text["pneumonia"].uncertain
    assert by_text["cellulitis"].hypothetical


def test_mtsamples_style_headings_and_separators() -> None:
    text = ("PAST MEDICAL HISTORY:,  Hypertension, DVT in 2010.,FAMILY HISTORY: , Father with "
            "colon cancer.,SOCIAL HISTORY:,  No tobacco.,ASSESSMENT:,  Cellulitis.")
    by_text = {m.text: m for m in _mentions(text)}
    assert by_text["DVT"].section == "past medical history" and by_text["DVT"].historical
    assert by_text["cancer"].section == "family history" and by_text["cancer"].family
    c = by_text["Cellulitis"]
    assert c.section == "assessment and plan" and not (c.historical or c.family or c.negated)


@pytest.mark.parametrize("heading", ["PAST MEDICAL HISTORY:", "Past Medical History:",
                                     "PMH:", "PAST MEDICAL HISTORY\n", "Past medical history\n"])
def test_heading_forms(heading: str) -> None:
    hs = default_sections().find(f"Seen today.\n{heading} Asthma.")
    assert [h.name for h in hs] == ["past medical history"]


def test_unknown_capital_headings_end_the_previous_section() -> None:
    text = "FAMILY HISTORY: Mother with diabetes.\nPHYSICAL EXAMINATION FINDINGS: Cellulitis."
    m = _mentions(text, "active-infection")[0]
    assert not m.family and m.section == "physical examination findings"


def _sentences(text: str) -> list[str]:
    hs = default_sections().find(text)
    sents = Sentences(text, hs)
    out, pos = [], 0
    while pos < len(text):
        s, e = sents.around(pos, pos + 1)
        e = max(e, pos + 1)
        if text[s:e].strip():
            out.append(text[s:e].strip())
        pos = e
    return out


def test_sentence_splitting_keeps_abbreviations_and_decimals() -> None:
    text = "Seen by Dr. Smith at 9 a.m. on 1.5 mg q.d. Denies fever. She has pneumonia."
    assert _sentences(text) == ["Seen by Dr. Smith at 9 a.m. on 1.5 mg q.d. Denies fever.",
                                "She has pneumonia."]


def test_sentence_splitting_numbered_lists_and_blank_lines() -> None:
    text = "ASSESSMENT: 1. No DVT 2. Cellulitis\n\nPlan as above"
    sents = _sentences(text)
    assert "1. No DVT" in sents and "2. Cellulitis" in sents and "Plan as above" in sents
    by_text = {m.text: m for m in _mentions(text)}
    assert by_text["DVT"].negated and not by_text["Cellulitis"].negated


def test_no_mentions_in_unrelated_text() -> None:
    assert _mentions("The weather was fine and she walked to the store.") == []
    assert _mentions("") == []
