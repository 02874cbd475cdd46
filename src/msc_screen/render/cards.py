"""CDS Hooks cards from an Assessment: one card per finding that is present or unknown.

Indicators follow severity (contraindicated → critical, physician review → warning, the rest
→ info); nothing found means no card at all, so the EHR is never nagged. Suggestions are
drafts built from the finding's knowledge-base ``actions`` — never decisions.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..model import SEVERITY_RANK, Assessment, Evidence, Finding

INDICATOR = {
    "contraindicated": "critical",
    "physician-review": "warning",
    "needs-information": "info",
    "recommendation": "info",
}
TOPIC_SYSTEM = "https://msc-screen.org/CodeSystem/rule-category"
COVERAGE_RULE = "data-coverage"  # the rule that says the data was missing or incomplete
MAX_SUMMARY = 139  # the spec: summary < 140 characters


def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1].rstrip() + "…"


def _evidence_md(e: Evidence) -> str:
    parts = [f"`{e.reference}`"]
    if e.code is not None:
        parts.append(e.code.display or e.code.code)
    if e.date:
        parts.append(e.date)
    if e.detail:
        parts.append(e.detail)
    if e.uncertain:
        parts.append(f"*uncertain: {e.uncertain}*")
    return "- " + " — ".join(parts)


def _footer(a: Assessment) -> str:
    return (f"Screening decision as of {a.as_of.isoformat()}: **{a.decision}** "
            f"(ruleset {a.ruleset.get('version', '?')}, policy {a.policy.get('name', '?')}). "
            "Screening support only; a physician decides.")


def _detail(a: Assessment, f: Finding) -> str:
    lines = [f.summary, ""]
    if f.evidence:
        lines.append("**Evidence**")
        lines += [_evidence_md(e) for e in f.evidence[:20]]
        if len(f.evidence) > 20:
            lines.append(f"- … and {len(f.evidence) - 20} more")
        lines.append("")
    if f.citations:
        lines.append("**Sources**")
        for c in f.citations:
            url = c.get("url")
            lines.append(f"- {c.get('text', c.get('id', ''))}" + (f" <{url}>" if url else ""))
        lines.append("")
    lines.append(_footer(a))
    return "\n".join(lines)


def _suggestions(a: Assessment, f: Finding, card_id: str) -> list[dict[str, Any]]:
    out = []
    for act in f.actions:
        codes = [c for c in act.get("codes", ()) if c.get("code")]
        if act.get("resource", "ServiceRequest") != "ServiceRequest" or not codes:
            continue
        coding = [{k: v for k, v in c.items() if v} for c in codes]
        draft = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "subject": {"reference": f"Patient/{a.patient_id}"},
            "code": {"coding": coding, "text": act.get("title") or coding[0].get("display")},
            "reasonCode": [{"text": f.title}],
        }
        out.append({
            "label": act.get("title") or "Order",
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{card_id}/{act.get('id')}")),
            "isRecommended": True,
            "actions": [{"type": "create", "description": act.get("title") or "Order",
                         "resource": draft}],
        })
    return out


def finding_card(a: Assessment, f: Finding, *, rules_url: str, hook_instance: str,
                 source_label: str, override_reasons: list[dict[str, str]]) -> dict[str, Any]:
    card_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{hook_instance}/{a.patient_id}/{f.rule}"))
    status = "" if f.status == "present" else " (needs information)"
    card: dict[str, Any] = {
        "uuid": card_id,
        "summary": _summary(f"{f.title}{status}: {f.summary}"),
        "indicator": INDICATOR.get(f.severity, "info"),
        "detail": _detail(a, f),
        "source": {
            "label": source_label,
            "url": f"{rules_url.rstrip('/')}/{f.rule}",
            "topic": {"system": TOPIC_SYSTEM, "code": f.category,
                      "display": f.category.replace("-", " ")},
        },
    }
    suggestions = _suggestions(a, f, card_id)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    if override_reasons and f.severity in ("contraindicated", "physician-review"):
        card["overrideReasons"] = override_reasons
    card["links"] = [{"label": f"Rule: {f.title}", "url": card["source"]["url"],
                      "type": "absolute"}]
    return card


def assessment_cards(a: Assessment, *, rules_url: str, hook_instance: str,
                     source_label: str = "msc-screen",
                     override_reasons: list[dict[str, str]] | None = None,
                     skip_rules: tuple[str, ...] = (),
                     ) -> list[dict[str, Any]]:
    """Cards worst-first; an empty list when nothing is present or unknown. ``skip_rules``:
    findings another card already shows (the data-coverage finding, by ``coverage_card``)."""
    shown = [f for f in a.findings if f.status in ("present", "unknown")
             and f.rule not in skip_rules]
    shown.sort(key=lambda f: (SEVERITY_RANK.get(f.severity, 99), f.status != "present", f.rule))
    return [finding_card(a, f, rules_url=rules_url, hook_instance=hook_instance,
                         source_label=source_label, override_reasons=override_reasons or [])
            for f in shown]


def notice_card(summary: str, detail: str, *, source_label: str, url: str,
                indicator: str = "info") -> dict[str, Any]:
    """A service notice (e.g. data could not be fetched) rather than a finding."""
    return {"uuid": str(uuid.uuid4()), "summary": _summary(summary), "indicator": indicator,
            "detail": detail, "source": {"label": source_label, "url": url}}


def _gaps(a: Assessment) -> list[tuple[str, str, str | None]]:
    """(kind, status, reason) of every kind of data that was not wholly provided (the
    per-question entries of the questionnaire are left to the findings)."""
    return [(k, v.status, v.reason) for k, v in a.coverage.items()
            if v.status != "provided" and not k.startswith("answer:")]


def coverage_card(a: Assessment, *, left_out: list[str], rules_url: str, hook_instance: str,
                  source_label: str) -> dict[str, Any] | None:
    """The "screening incomplete" card, shown first: every kind of data that is missing or
    incomplete, and why, and the resources left out because they could not be read. It stands
    for the data-coverage finding (same uuid and rule link). None when all data was there."""
    gaps = _gaps(a)
    cov = next((f for f in a.findings if f.rule == COVERAGE_RULE), None)
    if not gaps and not left_out and (cov is None or cov.status != "present"):
        return None
    words = {"not-provided": "not provided", "incomplete": "incomplete"}
    lines = ["Some of the patient's data is missing or could not be read, so this screening "
             "may miss a contraindication. Review the chart before ordering IV MSC therapy.",
             ""]
    if gaps:
        lines.append("**Missing or incomplete**")
        lines += [f"- {k}: {words.get(st, st)}" + (f" — {why}" if why else "")
                  for k, st, why in gaps]
        lines.append("")
    if left_out:
        lines.append("**Left out: could not be read**")
        lines += [f"- {x}" for x in left_out]
        lines.append("")
    lines.append(_footer(a))
    names = [k for k, _st, _why in gaps] or ["some resources"]
    card_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{hook_instance}/{a.patient_id}/{COVERAGE_RULE}"))
    url = f"{rules_url.rstrip('/')}/{COVERAGE_RULE}"
    return {
        "uuid": card_id,
        "summary": _summary(f"Screening incomplete: {', '.join(names)} missing or incomplete"),
        "indicator": "warning",
        "detail": "\n".join(lines),
        "source": {"label": source_label, "url": url,
                   "topic": {"system": TOPIC_SYSTEM, "code": cov.category if cov else "data",
                             "display": (cov.category if cov else "data").replace("-", " ")}},
        "links": [{"label": f"Rule: {cov.title if cov else 'Data available for screening'}",
                   "url": url, "type": "absolute"}],
    }


def foreign_card(a: Assessment, sent: list[str], *, source_label: str, url: str
                 ) -> dict[str, Any]:
    """Resources of another patient that the EHR sent, left out (named by type/id only)."""
    detail = (f"The EHR sent resources whose subject is not this patient (Patient/{a.patient_id}, "
              "the hook's context). They were left out: nothing in this screening is about them. "
              "Check the EHR's prefetch before relying on this screening.\n\n"
              + "\n".join(f"- {x}" for x in sent))
    return notice_card("Another patient's data was sent and left out of this screening", detail,
                       source_label=source_label, url=url, indicator="warning")
