"""Alert burden on the 215 shared Synthea patients (issue 13 item 1): cards per chart open
before (one card per present or unknown finding, the old design) and after (the service's own
card selection: only contraindications and physician review speak on patient-view).

The figures are printed (``pytest -s``) and pinned loosely: what must hold is that chart open
got much quieter, that no contraindication or review finding lost its card, and that the
tumour-marker recommendation (185 of 215 before) never opens a card on patient-view."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from msc_screen import screen
from msc_screen.render.cards import CardContext, assessment_cards, card_rules
from msc_screen.server.app import create_app

from .cards_check import assert_valid_response, prefetched_resources
from .conftest import NOW
from .fakefhir import prefetch_for

pytestmark = pytest.mark.xdist_group("cds-fhir")


def _cards(a, hook: str) -> list[dict]:
    ctx = CardContext("https://cds.example/rules", "h", hook=hook)
    return assessment_cards(a, rules_url=ctx.rules_url, hook_instance="h", ctx=ctx,
                            warnings=a.warnings)


@pytest.fixture(scope="module")
def assessments(synthea_dir: Path) -> list:
    files = sorted(synthea_dir.glob("*.json.gz"))
    assert len(files) == 215, len(files)
    return [screen(f, as_of=NOW.date(), complete="all") for f in files]


def test_cards_per_chart_before_and_after(assessments):
    before = [sum(f.status in ("present", "unknown") for f in a.findings) for a in assessments]
    after = [len(_cards(a, "patient-view")) for a in assessments]
    sign = [len(_cards(a, "order-sign")) for a in assessments]
    fired: collections.Counter[str] = collections.Counter()
    for a in assessments:
        for c in _cards(a, "patient-view"):
            fired.update(card_rules(c))
    n = len(assessments)
    any_before = sum(b > 0 for b in before)
    any_after = sum(x > 0 for x in after)
    print(f"\npatient-view, {n} Synthea charts: before {sum(before)} cards, {any_before} charts "
          f"({any_before / n:.0%}) with a card; after {sum(after)} cards, {any_after} charts "
          f"({any_after / n:.0%}); order-sign {sum(sign)} cards; cards by rule {dict(fired)}")
    assert any_before / n > 0.85  # the issue measured 94% (its count also had notices)
    assert any_after < any_before / 2 and sum(after) < sum(before) / 3
    assert "tumour-marker-panel-due" not in fired
    for a, k in zip(assessments, after, strict=True):  # nothing that needs a clinician is lost
        speaking = {f.rule for f in a.findings if f.status in ("present", "unknown")
                    and f.severity in ("contraindicated", "physician-review")}
        assert k == len(speaking)
    # an MSC order in play: the rest comes back, as one info card at most
    assert all(s - x in (0, 1) for s, x in zip(sign, after, strict=True))


def test_the_service_gives_the_same_cards_over_http(make_settings, synthea_patient):
    """The count above uses the service's card function; the service over HTTP agrees."""
    with TestClient(create_app(make_settings(insecure_no_auth=True))) as c:
        tmpl = c.app.state.cds.services["msc-screen-patient-view"].prefetch
        pre = prefetch_for(synthea_patient["resources"], synthea_patient["id"], tmpl)
        body = {"hook": "patient-view", "hookInstance": "h", "prefetch": pre,
                "context": {"patientId": synthea_patient["id"]}}
        cards = assert_valid_response(c.post("/cds-services/msc-screen-patient-view",
                                              json=body).json())
    a = screen(prefetched_resources(pre), as_of=NOW.date(), complete="all")
    assert sorted(r for x in cards for r in card_rules(x)) == sorted(
        r for x in _cards(a, "patient-view") for r in card_rules(x))
