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


def test_a_signoff_carries_only_with_the_same_fingerprint() -> None:
    from msc_screen.server.web.signoff import carries, fingerprint
    from msc_screen.store.clinic_models import StoredAssessment

    doc = {"decision": "physician-review", "findings": [
        {"rule": "pregnancy", "status": "unknown", "severity": "needs-information",
         "evidence": [], "summary": "x"}], "warnings": []}
    fp = fingerprint(doc, "r", "p")
    assert fp == fingerprint({**doc, "as_of": "2030-01-01"}, "r", "p")  # the date is not signed
    changed = {**doc, "findings": [{**doc["findings"][0], "status": "present"}]}
    assert fingerprint(changed, "r", "p") != fp and fingerprint(doc, "r", "p2") != fp
    a = StoredAssessment(id=1, findings_sha256=fp)
    assert carries(a, StoredAssessment(id=2, findings_sha256=fp))
    assert not carries(a, StoredAssessment(id=3, findings_sha256=fingerprint(changed, "r", "p")))
    # a screening stored before migration 0006 has no fingerprint: its sign-off is its own
    old = StoredAssessment(id=4, findings_sha256=None)
    assert carries(old, old) and not carries(old, StoredAssessment(id=5, findings_sha256=None))
