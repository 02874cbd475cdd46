"""The knowledge-base data the clinic pages read (issue 14): every rule has a plain
patient_title, the standard sign-off reasons are well formed, and the linter refuses a range on
a question it cannot apply to."""

from __future__ import annotations

import msgspec

from msc_screen.knowledge import get_ruleset
from msc_screen.knowledge.lint import check_questions
from msc_screen.knowledge.schema import Question
from msc_screen.server.web.clinic import SIGN_OFF_OUTCOMES
from msc_screen.server.web.signoff import reasons


def test_every_rule_has_a_plain_patient_title() -> None:
    kb = get_ruleset(None).kb
    for rule in kb.rules.values():
        assert rule.patient_title, rule.id
        assert rule.patient_title != rule.title or rule.id in ("pregnancy", "breastfeeding")


def test_signoff_reasons_are_unique_and_fit_known_outcomes() -> None:
    got = reasons()
    assert len({r.code for r in got}) == len(got) >= 6
    for outcome in SIGN_OFF_OUTCOMES:
        assert any(outcome in r.outcomes for r in got), outcome


def test_lint_refuses_a_range_on_a_text_question() -> None:
    kb = get_ruleset(None).kb
    rule = kb.rules["active-infection"]
    bad = Question(link_id="x-range", text="What?", type="string", max_value=3,
                   not_in_future=True)
    rule.questions.append(bad)
    try:
        found = [f.message for f in check_questions(kb) if "x-range" in f.where]
    finally:
        rule.questions.remove(bad)
    assert any("min_value/max_value" in m for m in found)
    assert any("not_in_future" in m for m in found)
    assert msgspec.json.decode(msgspec.json.encode(bad), type=Question) == bad
