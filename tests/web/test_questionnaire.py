"""The questionnaire built from the knowledge base, server-side enableWhen, and the
QuestionnaireResponse the engine reads."""

from __future__ import annotations

import datetime as dt

from msc_screen import screen
from msc_screen.knowledge import get_ruleset
from msc_screen.questionnaire import (
    answers_from_response,
    build_form,
    enabled_questions,
    parse_form,
    to_response,
)

NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)


def test_every_rule_question_is_in_the_questionnaire() -> None:
    form = build_form()
    fhir = form.to_fhir()
    assert fhir["resourceType"] == "Questionnaire" and fhir["id"] == "msc-prescreen"
    ids = set()

    def walk(items: list[dict]) -> None:
        for it in items:
            ids.add(it["linkId"])
            walk(it.get("item", []))

    walk(fhir["item"])
    for rule in get_ruleset().rules:
        for q in rule.definition.questions:
            assert q.link_id in ids, (rule.id, q.link_id)
    assert all(g["type"] == "group" for g in fhir["item"])


def test_follow_up_has_enable_when_and_choices_have_options() -> None:
    fhir = build_form().to_fhir()
    items = {it["linkId"]: it for g in fhir["item"] for it in g["item"]}
    weeks = items["pregnancy-weeks"]
    assert weeks["enableWhen"][0] == {"question": "pregnant-now", "operator": "=",
                                      "answerCoding": {"system": weeks["enableWhen"][0]
                                                       ["answerCoding"]["system"],
                                                       "code": "yes"}}
    # the pregnancy rule's applicability (female) on the pre-filled sex (issue 14)
    assert {"question": "patient-sex", "operator": "!=", "answerCoding": {
        "system": weeks["enableWhen"][1]["answerCoding"]["system"], "code": "male"}} in \
        weeks["enableWhen"]
    assert weeks["enableBehavior"] == "all"
    codes = [o["valueCoding"]["code"] for o in items["pregnant-now"]["answerOption"]]
    assert codes == ["yes", "no", "unsure"]
    assert items["pregnant-now"]["required"] is True


def test_answers_to_disabled_questions_are_dropped() -> None:
    form = build_form()
    answers, errors = parse_form(form, {"pregnant-now": "no", "pregnancy-weeks": "20"},
                                 final=False)
    assert answers == {"pregnant-now": "no"}
    assert not errors
    answers, _ = parse_form(form, {"pregnant-now": "yes", "pregnancy-weeks": "20"}, final=False)
    assert answers == {"pregnant-now": "yes", "pregnancy-weeks": 20}
    on = {q.link_id for q in enabled_questions(form, {"pregnant-now": "yes"})}
    off = {q.link_id for q in enabled_questions(form, {"pregnant-now": "no"})}
    assert "pregnancy-weeks" in on and "pregnancy-weeks" not in off


def test_bad_values_and_required_questions_are_reported() -> None:
    form = build_form()
    _answers, errors = parse_form(form, {"pregnant-now": "maybe"}, final=True)
    msgs = {e.link_id: e.message for e in errors}
    assert "pregnant-now" in msgs and "option" in msgs["pregnant-now"]
    required = {q.link_id for q in form.questions if q.required and not q.enable_when}
    assert required <= set(msgs)
    _, errors = parse_form(form, {"pregnant-now": "yes", "pregnancy-weeks": "ten"}, final=False)
    assert [e.link_id for e in errors] == ["pregnancy-weeks"]


def test_response_round_trips_and_engine_reads_it() -> None:
    form = build_form()
    answers = {"pregnant-now": "yes", "pregnancy-weeks": 12}
    qr = to_response(form, answers, response_id="qr-1", patient_ref="Patient/p1",
                     authored=NOW, completed=True)
    assert qr["status"] == "completed"
    assert answers_from_response(form, qr) == answers
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female",
                      "birthDate": "1990-01-01"}},
        {"resource": qr}]}
    a = screen(bundle, as_of=NOW.date())
    f = next(f for f in a.findings if f.rule == "pregnancy")
    assert f.status == "present" and a.decision == "contraindicated"
    assert any(e.source == "questionnaire" and "pregnant-now" in e.reference
               for e in f.evidence)
