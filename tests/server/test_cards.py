"""render/cards.py: one card per present/unknown finding, spec-shaped, nothing when nothing."""

from __future__ import annotations

import datetime as dt

from msc_screen.model import Assessment, Coding, Evidence, Finding
from msc_screen.render.cards import assessment_cards

from .cards_check import assert_valid_response


def finding(rule: str, severity: str, status: str, summary: str = "Found.",
            actions: tuple = ()) -> Finding:
    return Finding(rule=rule, title=rule.title(), origin="seed", category="cat-x",
                   severity=severity, status=status, summary=summary,  # type: ignore[arg-type]
                   evidence=(Evidence("Condition/1", "fhir", Coding("snomed", "1", "Thing"),
                                      "2019-01-01", detail="active"),),
                   citations=({"id": "c", "text": "A source.", "url": "https://x.example"},),
                   actions=actions)


def assessment(*findings: Finding) -> Assessment:
    return Assessment("p1", dt.date(2019, 12, 31), "physician-review", findings,
                      {"id": "rs", "version": "1"}, {"name": "default"})


def cards_for(*findings: Finding) -> list[dict]:
    a = assessment(*findings)
    cards = assessment_cards(a, rules_url="https://cds.example/rules", hook_instance="h1",
                             override_reasons=[{"system": "s", "code": "c", "display": "D"}])
    assert_valid_response({"cards": cards})
    return cards


def test_no_cards_when_everything_is_absent():
    assert cards_for(finding("a", "contraindicated", "absent")) == []


def test_indicators_follow_severity_worst_first():
    cards = cards_for(finding("r", "recommendation", "present"),
                      finding("n", "needs-information", "unknown"),
                      finding("c", "contraindicated", "present"),
                      finding("w", "physician-review", "present"))
    assert [c["indicator"] for c in cards] == ["critical", "warning", "info", "info"]
    assert cards[0]["source"]["url"] == "https://cds.example/rules/c"
    assert "overrideReasons" in cards[0] and "overrideReasons" not in cards[2]
    assert "needs information" in cards[2]["summary"]


def test_summary_is_cut_below_140_characters():
    card = cards_for(finding("c", "contraindicated", "present", summary="word " * 80))[0]
    assert len(card["summary"]) < 140 and card["summary"].endswith("…")


def test_detail_has_evidence_citations_and_no_eligibility_claim():
    detail = cards_for(finding("c", "contraindicated", "present"))[0]["detail"]
    assert "`Condition/1`" in detail and "Thing" in detail and "https://x.example" in detail
    assert "eligible" not in detail.lower() and "cleared" not in detail.lower()


def test_actions_become_loinc_service_request_drafts():
    act = {"id": "hcg", "title": "Pregnancy test", "resource": "ServiceRequest",
           "codes": [{"system": "http://loinc.org", "code": "2118-8", "display": "hCG"}]}
    card = cards_for(finding("c", "contraindicated", "present", actions=(act,)))[0]
    assert card["selectionBehavior"] == "any"
    draft = card["suggestions"][0]["actions"][0]["resource"]
    assert draft["resourceType"] == "ServiceRequest" and draft["status"] == "draft"
    assert draft["code"]["coding"][0] == {"system": "http://loinc.org", "code": "2118-8",
                                          "display": "hCG"}
    assert draft["subject"] == {"reference": "Patient/p1"}


def test_card_uuids_are_stable_per_hook_instance():
    f = finding("c", "contraindicated", "present")
    a = assessment(f)
    one = assessment_cards(a, rules_url="u", hook_instance="h1")[0]["uuid"]
    assert one == assessment_cards(a, rules_url="u", hook_instance="h1")[0]["uuid"]
    assert one != assessment_cards(a, rules_url="u", hook_instance="h2")[0]["uuid"]
