"""CDS Hooks cards from an Assessment, designed to stay quiet unless a clinician must act.

- One card per contraindication or physician-review finding (worst first): the finding, the
  rule's rationale, the patient's evidence and the sources. ``critical`` for contraindicated,
  ``warning`` for physician review.
- Needs-information findings and recommendations share one ``info`` card, shown only when an
  MSC order is in play (order-select / order-sign) or when the policy asks for it on
  patient-view (``cds.patient_view_info``, knowledge-base data).
- On the order hooks every card names the draft MSC order, and contraindication/review cards
  offer to delete it. Suggested tests are one draft ServiceRequest each, coded as orderable
  (``Orderables``), only for the patient's sex where the test is sex-specific, each labelled
  with what accepting it does.
- Text from the record is escaped (``md``): a Condition's display cannot add HTML, links or
  formatting to the card. Nothing found means no card at all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import SEVERITY_RANK, Assessment, Evidence, Finding

INDICATOR = {
    "contraindicated": "critical",
    "physician-review": "warning",
    "needs-information": "info",
    "recommendation": "info",
}
SPEAKING = ("contraindicated", "physician-review")  # severities that get a card of their own
TOPIC_SYSTEM = "https://msc-screen.org/CodeSystem/rule-category"
COVERAGE_RULE = "data-coverage"  # the rule that says the data was missing or incomplete
INFO_RULE = "needs-information-and-recommendations"  # the info card's id in uuids and audit
MAX_SUMMARY = 139  # the spec: summary < 140 characters
ORDER_HOOKS = ("order-select", "order-sign")
_RANK = {"info": 0, "warning": 1, "critical": 2}

# What can make record text into markup in CommonMark/GFM: emphasis, code, links and images
# (brackets), tables, strikethrough, and HTML ("&" and "<" become entities, so raw HTML never
# reaches an EHR that renders it). Autolinks are broken up ("https:\/\/", "www\.", "\@") so
# a URL in a record is text, not a link. Other punctuation only means something at the start
# of a line, and record text never starts one (it is joined into one line behind a prefix).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~@])")
_AUTOLINK = re.compile(r"(?i)(:)(//)|(www)(\.)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def md(text: object) -> str:
    """Record text made inert in markdown: one line, markup escaped, no HTML, no links."""
    s = " ".join(_CONTROL.sub(" ", str(text)).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return _AUTOLINK.sub(lambda m: (m.group(1) + "\\/\\/") if m.group(1)
                         else m.group(3) + "\\.", s)


@dataclass(frozen=True)
class Orderable:
    name: str  # "prostate-specific antigen (PSA)"
    order: dict[str, str]  # the coding to order by: an orderable LOINC or a site order code
    sex: str | None = None  # "male" / "female": offered only to patients of that sex


@dataclass(frozen=True)
class Orderables:
    tests: Mapping[tuple[str, str], Orderable] = field(default_factory=dict)
    category: dict[str, Any] | None = None


@dataclass(frozen=True)
class CardContext:
    """What shapes a hook's cards besides the assessment."""

    rules_url: str
    hook_instance: str
    hook: str = "patient-view"
    source_label: str = "msc-screen"
    override_reasons: Sequence[dict[str, str]] = ()
    rationale: Mapping[str, str] = field(default_factory=dict)  # rule id -> rationale
    msc_orders: Sequence[dict[str, Any]] = ()  # the draft MSC orders in play (order hooks)
    show_info: bool | None = None  # None: on the order hooks only
    sex: str | None = None
    orderables: Orderables | None = None
    max_indicator: str | None = None  # the strongest indicator allowed (policy, patient-view)

    def indicator(self, severity: str) -> str:
        ind = INDICATOR.get(severity, "info")
        cap = self.max_indicator
        if cap in _RANK and _RANK[ind] > _RANK[cap]:
            return cap
        return ind

    @property
    def info_shown(self) -> bool:
        return self.hook in ORDER_HOOKS if self.show_info is None else self.show_info


def _summary(text: str) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1].rstrip() + "…"


def _card_id(ctx: CardContext, a: Assessment, rule: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.hook_instance}/{a.patient_id}/{rule}"))


def _evidence_md(e: Evidence) -> str:
    parts = [md(e.reference)]
    if e.code is not None:
        parts.append(md(e.code.display or e.code.code))
    if e.date:
        parts.append(md(e.date))
    if e.detail:
        parts.append(md(e.detail))
    if e.uncertain:
        parts.append(f"*uncertain: {md(e.uncertain)}*")
    return "- " + " — ".join(parts)


def _footer(a: Assessment) -> str:
    return (f"Screening decision as of {a.as_of.isoformat()}: **{a.decision}** "
            f"(ruleset {a.ruleset.get('version', '?')}, policy {a.policy.get('name', '?')}). "
            "Screening support only; a physician decides.")


def order_name(order: Mapping[str, Any]) -> str:
    """What a clinician calls the draft order: its text or first display, else Type/id."""
    for f in ("medicationCodeableConcept", "code", "productCodeableConcept"):
        cc = order.get(f)
        if isinstance(cc, dict):
            if isinstance(cc.get("text"), str) and cc["text"].strip():
                return str(cc["text"])
            for c in cc.get("coding") or ():
                if isinstance(c, dict) and isinstance(c.get("display"), str):
                    return str(c["display"])
    ref = order.get("medicationReference")
    if isinstance(ref, dict) and isinstance(ref.get("display"), str):
        return str(ref["display"])
    return f"{order.get('resourceType', 'order')}/{order.get('id', '?')}"


def _order_ref(order: Mapping[str, Any]) -> str | None:
    rid = order.get("id")
    return f"{order.get('resourceType')}/{rid}" if isinstance(rid, str) and rid else None


def _orders_line(ctx: CardContext) -> str | None:
    if not ctx.msc_orders:
        return None
    names = ", ".join(f"**{md(order_name(o))}**" for o in ctx.msc_orders)
    verb = "being signed" if ctx.hook == "order-sign" else "selected"
    return f"The IV MSC order {verb}: {names}."


def _sources(f: Finding) -> list[str]:
    if not f.citations:
        return []
    lines = ["**Sources**"]
    for c in f.citations:
        url = c.get("url")
        lines.append(f"- {c.get('text', c.get('id', ''))}" + (f" <{url}>" if url else ""))
    return [*lines, ""]


def _evidence(f: Finding, limit: int = 20) -> list[str]:
    if not f.evidence:
        return []
    lines = ["**Evidence**", *(_evidence_md(e) for e in f.evidence[:limit])]
    if len(f.evidence) > limit:
        lines.append(f"- … and {len(f.evidence) - limit} more")
    return [*lines, ""]


def _detail(a: Assessment, f: Finding, ctx: CardContext) -> str:
    lines = [md(f.summary), ""]
    orders = _orders_line(ctx)
    if orders:
        lines += [orders, ""]
    why = ctx.rationale.get(f.rule)
    if why:
        lines += ["**Why it matters**", " ".join(why.split()), ""]
    lines += _evidence(f) + _sources(f)
    lines.append(_footer(a))
    return "\n".join(lines)


def _test_suggestions(a: Assessment, findings: Sequence[Finding], ctx: CardContext,
                      card_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """One suggestion per orderable, sex-appropriate test of the findings' actions; and the
    lines naming the tests that are left out, and why."""
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    tests = ctx.orderables.tests if ctx.orderables is not None else {}
    seen: set[tuple[str, str]] = set()
    for f in findings:
        for act in f.actions:
            if act.get("resource", "ServiceRequest") != "ServiceRequest":
                continue
            for c in act.get("codes", ()):
                key = (str(c.get("system")), str(c.get("code")))
                if key in seen:
                    continue
                seen.add(key)
                t = tests.get(key)
                if t is None:
                    notes.append(f"- {c.get('display') or c.get('code')}: no orderable code "
                                 "configured for it, so it is not drafted")
                    continue
                if t.sex is not None and ctx.sex != t.sex:
                    if ctx.sex not in ("male", "female"):
                        notes.append(f"- {t.name}: for {t.sex} patients only, and the "
                                     "record does not give the patient's sex")
                    continue
                out.append(_draft(a, f, t, ctx, card_id))
    return out, notes


def _draft(a: Assessment, f: Finding, t: Orderable, ctx: CardContext, card_id: str
           ) -> dict[str, Any]:
    draft: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{a.patient_id}"},
        "code": {"coding": [dict(t.order)], "text": t.name},
        "reasonCode": [{"text": f.title}],
    }
    if ctx.orderables is not None and ctx.orderables.category:
        draft["category"] = [{"coding": [dict(ctx.orderables.category)]}]
    label = f"Order a {t.name} test"
    return {
        "label": label,
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL,
                               f"{card_id}/{t.order['system']}|{t.order['code']}")),
        "isRecommended": False,
        "actions": [{"type": "create", "resource": draft,
                     "description": f"Adds a draft order for a {t.name} test (unsigned; "
                                    "you review and sign it)"}],
    }


def _cancel_suggestion(ctx: CardContext, card_id: str) -> dict[str, Any] | None:
    refs = [r for r in (_order_ref(o) for o in ctx.msc_orders) if r]
    if ctx.hook not in ORDER_HOOKS or not refs:
        return None
    names = ", ".join(order_name(o) for o in ctx.msc_orders)
    return {"label": "Cancel the IV MSC order",
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{card_id}/cancel")),
            "isRecommended": False,
            "actions": [{"type": "delete", "resourceId": refs,
                         "description": f"Removes the draft order ({_summary(names)}) from "
                                        "this order session"}]}


def _source(ctx: CardContext, rule: str, category: str) -> dict[str, Any]:
    return {"label": ctx.source_label, "url": f"{ctx.rules_url.rstrip('/')}/{rule}",
            "topic": {"system": TOPIC_SYSTEM, "code": category,
                      "display": category.replace("-", " ")}}


def finding_card(a: Assessment, f: Finding, ctx: CardContext) -> dict[str, Any]:
    """The card of one contraindication or physician-review finding."""
    card_id = _card_id(ctx, a, f.rule)
    status = "" if f.status == "present" else " (not enough data)"
    card: dict[str, Any] = {
        "uuid": card_id,
        "summary": _summary(f"{f.title}{status}: {f.summary}"),
        "indicator": ctx.indicator(f.severity),
        "detail": _detail(a, f, ctx),
        "source": _source(ctx, f.rule, f.category),
    }
    suggestions, _notes = _test_suggestions(a, [f], ctx, card_id)
    cancel = _cancel_suggestion(ctx, card_id)
    if cancel is not None:
        suggestions.insert(0, cancel)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    if ctx.override_reasons:
        card["overrideReasons"] = list(ctx.override_reasons)
    card["links"] = [{"label": f"Rule: {f.title}", "url": card["source"]["url"],
                      "type": "absolute"}]
    return card


def info_card(a: Assessment, findings: Sequence[Finding], ctx: CardContext,
              warnings: Sequence[str] = ()) -> dict[str, Any] | None:
    """One card for what needs information or is recommended, and the record's warnings."""
    if not findings and not warnings:
        return None
    card_id = _card_id(ctx, a, INFO_RULE)
    lines: list[str] = []
    orders = _orders_line(ctx)
    if orders:
        lines += [orders, ""]
    if findings:
        lines.append("**Before IV MSC therapy**")
        lines += [f"- **{f.title}**: {md(f.summary)}" for f in findings]
        lines.append("")
    suggestions, notes = _test_suggestions(a, findings, ctx, card_id)
    if notes:
        lines += ["**Tests not drafted**", *notes, ""]
    if warnings:
        lines += ["**Parts of the record the screening could not use**",
                  *(f"- {md(w)}" for w in warnings), ""]
    lines.append(_footer(a))
    n = len(findings)
    what = (f"{n} item{'s' if n != 1 else ''} to complete or consider" if n else
            f"the record was read with {len(warnings)} warning(s)")
    card: dict[str, Any] = {
        "uuid": card_id,
        "summary": _summary(f"Before IV MSC therapy: {what}"),
        "indicator": "info",
        "detail": "\n".join(lines),
        "source": {"label": ctx.source_label, "url": ctx.rules_url},
    }
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    if findings:
        card["links"] = [{"label": f"Rule: {f.title}",
                          "url": f"{ctx.rules_url.rstrip('/')}/{f.rule}", "type": "absolute"}
                         for f in findings[:10]]
    return card


def card_rules(card: Mapping[str, Any]) -> list[str]:
    """The rules a card speaks for (for the audit): its source rule, or the info card's."""
    url = str(card.get("source", {}).get("url", ""))
    if "/rules/" in url:
        return [url.rsplit("/", 1)[1]]
    return [str(link["url"]).rsplit("/", 1)[1] for link in card.get("links", ())
            if "/rules/" in str(link.get("url", ""))]


def assessment_cards(a: Assessment, *, rules_url: str, hook_instance: str,
                     source_label: str = "msc-screen",
                     override_reasons: Sequence[dict[str, str]] | None = None,
                     skip_rules: tuple[str, ...] = (), ctx: CardContext | None = None,
                     warnings: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Cards worst-first; an empty list when nothing needs a clinician. ``skip_rules``:
    findings another card already shows (the data-coverage finding, by ``coverage_card``)."""
    ctx = ctx or CardContext(rules_url, hook_instance, source_label=source_label,
                             override_reasons=tuple(override_reasons or ()))
    shown = [f for f in a.findings if f.status in ("present", "unknown")
             and f.rule not in skip_rules]
    shown.sort(key=lambda f: (SEVERITY_RANK.get(f.severity, 99), f.status != "present", f.rule))
    cards = [finding_card(a, f, ctx) for f in shown if f.severity in SPEAKING]
    if ctx.info_shown:
        info = info_card(a, [f for f in shown if f.severity not in SPEAKING], ctx, warnings)
        if info is not None:
            cards.append(info)
    return cards


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
        lines += [f"- {k}: {words.get(st, st)}" + (f" — {md(why)}" if why else "")
                  for k, st, why in gaps]
        lines.append("")
    if left_out:
        lines.append("**Left out: could not be read**")
        lines += [f"- {md(x)}" for x in left_out]
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
    detail = (f"The EHR sent resources whose subject is not this patient "
              f"({md('Patient/' + a.patient_id)}, the hook's context). They were left out: "
              "nothing in this screening is about them. Check the EHR's prefetch before "
              "relying on this screening.\n\n" + "\n".join(f"- {md(x)}" for x in sent))
    return notice_card("Another patient's data was sent and left out of this screening", detail,
                       source_label=source_label, url=url, indicator="warning")
