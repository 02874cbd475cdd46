"""Checks that a CDS Hooks response follows the spec's required fields (2.0 / 3.0 ballot)."""

from __future__ import annotations

from typing import Any

from msc_screen import screen

INDICATORS = {"info", "warning", "critical"}


def assert_no_null_or_empty(value: Any, path: str = "$") -> None:
    """The spec: JSON elements SHALL NOT be null or empty unless specified."""
    assert value is not None, f"{path} is null"
    if isinstance(value, dict):
        assert value, f"{path} is an empty object"
        for k, v in value.items():
            assert_no_null_or_empty(v, f"{path}.{k}")
    elif isinstance(value, list):
        assert value, f"{path} is an empty array"
        for i, v in enumerate(value):
            assert_no_null_or_empty(v, f"{path}[{i}]")
    elif isinstance(value, str):
        assert value, f"{path} is an empty string"


def assert_valid_response(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert set(body) <= {"cards", "systemActions"}
    cards = body["cards"]
    assert isinstance(cards, list)
    for c in cards:
        assert_no_null_or_empty(c)
        assert isinstance(c["summary"], str) and len(c["summary"]) < 140
        assert c["indicator"] in INDICATORS
        assert isinstance(c["source"]["label"], str)
        assert isinstance(c["uuid"], str)
        if "suggestions" in c:
            assert c["selectionBehavior"] in ("at-most-one", "any")
            for s in c["suggestions"]:
                assert isinstance(s["label"], str)
                for a in s.get("actions", ()):
                    assert a["type"] in ("create", "update", "delete")
                    assert isinstance(a["description"], str)
                    if a["type"] in ("create", "update"):
                        assert a["resource"]["resourceType"]
                    else:  # 2.0: a list of relative references to the resources to delete
                        assert a["resourceId"] and all("/" in r for r in a["resourceId"])
        for o in c.get("overrideReasons", ()):
            assert o["code"] and o["system"] and o["display"]
        for link in c.get("links", ()):
            assert link["label"] and link["url"] and link["type"] in ("absolute", "smart")
    return cards


def prefetched_resources(prefetch: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for v in prefetch.values():
        if v is None:
            continue
        if v.get("resourceType") == "Bundle":
            out += [e["resource"] for e in v.get("entry", [])]
        else:
            out.append(v)
    return out


def expected_rules(resources: list[dict[str, Any]], as_of: Any,
                   speaking_only: bool = True, hook: str = "patient-view"
                   ) -> list[tuple[str, str]]:
    """(rule, indicator) the engine itself finds present/unknown in the same resources, every
    kind of data searched (each prefetch key answered or fetched: what a search does not
    return, the patient does not have). ``speaking_only``: the contraindication and
    physician-review findings, each of which has a card of its own (issue 13: the rest share
    one info card, shown on the order hooks). On patient-view a contraindication is a
    ``warning`` (the default policy's ``cds.patient_view_max_indicator``), ``critical`` on the
    order hooks."""
    a = screen(resources, as_of=as_of, complete="all")
    sev = {"contraindicated": "critical" if hook != "patient-view" else "warning",
           "physician-review": "warning"}
    return sorted((f.rule, sev.get(f.severity, "info")) for f in a.findings
                  if f.status in ("present", "unknown")
                  and (not speaking_only or f.severity in sev))


def info_rules(resources: list[dict[str, Any]], as_of: Any) -> list[str]:
    """The rules the one info card lists (needs-information and recommendations)."""
    a = screen(resources, as_of=as_of, complete="all")
    return sorted(f.rule for f in a.findings if f.status in ("present", "unknown")
                  and f.severity in ("needs-information", "recommendation"))


def card_rules(cards: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((c["source"]["url"].rsplit("/", 1)[1], c["indicator"]) for c in cards
                  if "/rules/" in c["source"]["url"])
