"""render/cards.py: a card per contraindication/review finding, one info card on the order
hooks, orderable sex-appropriate suggestions, the order named and deletable, record text
escaped, spec-shaped, nothing when nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from markdown_it import MarkdownIt

from msc_screen.model import Assessment, Coding, Evidence, Finding
from msc_screen.render.cards import CardContext, assessment_cards
from msc_screen.server.cds.orderables import load_orderables

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


def test_patient_view_speaks_only_for_contraindications_and_review_worst_first():
    findings = (finding("r", "recommendation", "present"),
                finding("n", "needs-information", "unknown"),
                finding("c", "contraindicated", "present"),
                finding("w", "physician-review", "present"))
    cards = cards_for(*findings)
    assert [c["indicator"] for c in cards] == ["critical", "warning"]
    assert cards[0]["source"]["url"] == "https://cds.example/rules/c"
    assert all("overrideReasons" in c for c in cards)
    # the order hooks (or a policy asking for it) add one info card for the other two
    ctx = CardContext("https://cds.example/rules", "h1", hook="order-sign")
    cards = assessment_cards(assessment(*findings), rules_url="u", hook_instance="h1", ctx=ctx)
    assert [c["indicator"] for c in cards] == ["critical", "warning", "info"]
    assert "**N**" in cards[2]["detail"] and "**R**" in cards[2]["detail"]
    assert "2 items" in cards[2]["summary"]
    shown = CardContext("https://cds.example/rules", "h1", show_info=True)
    assert len(assessment_cards(assessment(*findings), rules_url="u", hook_instance="h1",
                                ctx=shown)) == 3
    only_info = assessment_cards(assessment(findings[0]), rules_url="u", hook_instance="h1")
    assert only_info == []  # a recommendation alone keeps chart open quiet


def test_summary_is_cut_below_140_characters():
    card = cards_for(finding("c", "contraindicated", "present", summary="word " * 80))[0]
    assert len(card["summary"]) < 140 and card["summary"].endswith("…")


def test_detail_has_rationale_evidence_citations_and_no_eligibility_claim():
    ctx = CardContext("https://cds.example/rules", "h1",
                      rationale={"c": "Cells may feed a tumour."})
    detail = assessment_cards(assessment(finding("c", "contraindicated", "present")),
                              rules_url="u", hook_instance="h1", ctx=ctx)[0]["detail"]
    assert "**Why it matters**\nCells may feed a tumour." in detail
    assert "Condition/1" in detail and "Thing" in detail and "https://x.example" in detail
    assert "eligible" not in detail.lower() and "cleared" not in detail.lower()


PANEL = {"id": "panel", "title": "Discuss a tumour-marker panel", "resource": "ServiceRequest",
         "codes": [{"system": "http://loinc.org", "code": "2039-6", "display": "CEA"},
                   {"system": "http://loinc.org", "code": "2857-1", "display": "PSA"},
                   {"system": "http://loinc.org", "code": "10334-1", "display": "CA-125"},
                   {"system": "http://loinc.org", "code": "99999-9", "display": "Result only"}]}


def info_for(sex: str | None) -> dict:
    ctx = CardContext("https://cds.example/rules", "h1", hook="order-sign", sex=sex,
                      orderables=load_orderables())
    cards = assessment_cards(assessment(finding("r", "recommendation", "present",
                                                actions=(PANEL,))),
                             rules_url="u", hook_instance="h1", ctx=ctx)
    assert_valid_response({"cards": cards})
    assert len(cards) == 1
    return cards[0]


def test_suggested_tests_are_one_orderable_sex_appropriate_request_each():
    man, woman, unknown = info_for("male"), info_for("female"), info_for(None)
    codes = [[s["actions"][0]["resource"]["code"]["coding"][0]["code"]
              for s in c["suggestions"]] for c in (man, woman, unknown)]
    assert codes == [["2039-6", "2857-1"], ["2039-6", "10334-1"], ["2039-6"]]
    for s in man["suggestions"]:
        (act,) = s["actions"]
        draft = act["resource"]
        assert act["type"] == "create" and len(draft["code"]["coding"]) == 1
        assert draft["status"] == "draft" and draft["subject"] == {"reference": "Patient/p1"}
        assert draft["category"][0]["coding"][0]["code"] == "108252007"
        assert s["label"].startswith("Order a ") and "Discuss" not in s["label"]
    assert man["selectionBehavior"] == "any"
    assert "Result only: no orderable code" in man["detail"]
    assert "for male patients only" in unknown["detail"]


MSC = {"resourceType": "MedicationRequest", "id": "draft-9", "status": "draft",
       "medicationCodeableConcept": {"text": "Remestemcel-L <b>IV</b>"}}


def test_order_sign_cards_name_the_order_and_offer_to_delete_it():
    ctx = CardContext("https://cds.example/rules", "h1", hook="order-sign", msc_orders=(MSC,))
    (card,) = assessment_cards(assessment(finding("c", "contraindicated", "present")),
                               rules_url="u", hook_instance="h1", ctx=ctx)
    assert_valid_response({"cards": [card]})
    assert "The IV MSC order being signed: **Remestemcel-L &lt;b>IV&lt;/b>**" in card["detail"]
    cancel = card["suggestions"][0]
    assert cancel["label"] == "Cancel the IV MSC order"
    assert cancel["actions"] == [{"type": "delete", "resourceId": ["MedicationRequest/draft-9"],
                                  "description": cancel["actions"][0]["description"]}]
    pv = CardContext("https://cds.example/rules", "h1")
    (plain,) = assessment_cards(assessment(finding("c", "contraindicated", "present")),
                                rules_url="u", hook_instance="h1", ctx=pv)
    assert "suggestions" not in plain


INJECTIONS = [
    "<img src=x onerror=alert(1)>",
    "[Click to renew your password](https://evil.example/login)",
    "see https://evil.example/phish or www.evil.example",
    "**URGENT** `code` <script>alert(1)</script> ![x](https://evil.example/t.png)",
    "line one\n\n# Heading\n<a href='https://evil.example'>x</a>",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_record_text_is_escaped_in_markdown(text):
    """A Condition display is the record's, not ours: rendered as CommonMark (raw HTML on,
    as the sandbox does), it must stay text — no element, no link, no emphasis."""
    f = Finding(rule="c", title="C", origin="seed", category="cat", severity="contraindicated",
                status="present", summary=f"Found {text}.",
                evidence=(Evidence("Condition/1", "fhir", Coding("snomed", "1", text),
                                   "2019-01-01", detail=text, uncertain=text),))
    card = cards_for(f)[0]
    html = MarkdownIt("commonmark", {"html": True}).enable("strikethrough").render(
        card["detail"])
    for tag in ("<img", "<script", "<a ", "<h1", "<strong>URGENT", "<code>code"):
        assert tag not in html, (tag, html)
    assert "https://evil" not in card["detail"] and "www.evil" not in card["detail"]
    assert ("evil.example" in html) == ("evil.example" in text)  # still there to read


def test_card_uuids_are_stable_per_hook_instance():
    f = finding("c", "contraindicated", "present")
    a = assessment(f)
    one = assessment_cards(a, rules_url="u", hook_instance="h1")[0]["uuid"]
    assert one == assessment_cards(a, rules_url="u", hook_instance="h1")[0]["uuid"]
    assert one != assessment_cards(a, rules_url="u", hook_instance="h2")[0]["uuid"]


def test_patient_view_indicator_cap_keeps_pop_ups_for_the_order_hooks():
    f = finding("c", "contraindicated", "present")
    capped = CardContext("https://cds.example/rules", "h1", max_indicator="warning")
    (card,) = assessment_cards(assessment(f), rules_url="u", hook_instance="h1", ctx=capped)
    assert card["indicator"] == "warning"
    order = CardContext("https://cds.example/rules", "h1", hook="order-sign")
    (card,) = assessment_cards(assessment(f), rules_url="u", hook_instance="h1", ctx=order)
    assert card["indicator"] == "critical"
