"""The rule catalogue: each rule as a clinician reads it (criteria in words, rationale,
citations, ONC source attributes). Rendered from the same compiled rules the engine runs."""

from __future__ import annotations

from typing import Any

from ..knowledge.compiled import CompiledCriterion, CompiledRule, CompiledRuleset


def _days(n: int | None) -> str:
    if n is None:
        return ""
    if n % 365 == 0 and n >= 365:
        y = n // 365
        return f"{y} year{'s' if y > 1 else ''}"
    return f"{n} days"


def criterion_in_words(c: CompiledCriterion) -> str:
    """One sentence per criterion, generated from its data (the label, when given, leads)."""
    vs = " or ".join(v.title for v in c.valuesets)
    if c.kind == "condition":
        state = {"current": "a current", "resolved": "a resolved", "any": "any"}[c.status]
        s = f"{state} condition in value set '{vs}'"
        if c.onset_within_days is not None:
            s += f" with onset within {_days(c.onset_within_days)}"
        if c.resolved_within_days is not None:
            s += f", resolved within the last {_days(c.resolved_within_days)}"
        if c.ended_by:
            s += " (ended by a later " + " or ".join(v.title for v in c.ended_by) + ")"
    elif c.kind == "observation":
        val = {
            "any": "any result", "positive": "a positive result", "negative": "a negative result",
            "above-reference": "a result above its reference range",
            "below-reference": "a result below its reference range",
        }[c.value]
        s = f"{'the most recent' if c.most_recent else 'an'} observation in '{vs}' with {val}"
        if c.within_days is not None:
            s += f" within {_days(c.within_days)}"
    elif c.kind == "medication":
        s = f"medication in '{vs}'"
        s += (f" ordered or taken within {_days(c.within_days)}" if c.within_days is not None
              else " currently active")
    elif c.kind == "procedure":
        s = f"procedure in '{vs}'"
        if c.within_days is not None:
            s += f" within {_days(c.within_days)}"
    elif c.kind == "allergy":
        s = f"an active allergy or intolerance to '{vs}'"
    elif c.kind == "questionnaire":
        ans = ", ".join(str(a) for a in c.answers) or "any answer"
        s = f"questionnaire answer to '{c.link_id}': {ans}"
        if c.within_days is not None:
            s += f" (a date within {_days(c.within_days)})"
    elif c.kind == "note":
        s = "an affirmed mention of the patient's own " + (
            "current or past" if c.accept_historical else "current") + " condition in a note"
    elif c.kind == "rule":
        s = f"rule '{c.rule}' is {' or '.join(c.rule_status)}"
    else:
        s = "demographics: " + ", ".join(
            x for x in (
                f"sex {'/'.join(c.sex)}" if c.sex else "",
                f"age ≥ {c.min_age}" if c.min_age is not None else "",
                f"age ≤ {c.max_age}" if c.max_age is not None else "",
            ) if x)
    if c.max_severity:
        s += f" (at most {c.max_severity})"
    return f"{c.label} — {s}" if c.label else s


def rule_entry(rule: CompiledRule, ruleset: CompiledRuleset) -> dict[str, Any]:
    d = rule.definition
    m = ruleset.kb.manifest
    return {
        "id": rule.id,
        "title": rule.title,
        "category": rule.category,
        "origin": rule.origin,
        "seed_group": d.seed_group,
        "severity": rule.severity,
        "applicability": {
            "sex": list(rule.sexes), "min_age": rule.min_age, "max_age": rule.max_age,
        },
        "criteria": {
            "present_if": [criterion_in_words(c) for c in rule.present_if],
            "unknown_if": [criterion_in_words(c) for c in rule.unknown_if],
            "absent_if": [criterion_in_words(c) for c in rule.absent_if],
            "otherwise": rule.otherwise,
        },
        "parameters": {
            k: {"value": v, "default": d.parameters[k].default,
                "description": d.parameters[k].description, "unit": d.parameters[k].unit}
            for k, v in rule.parameters.items()
        },
        "rationale": d.rationale.strip(),
        "patient_text": d.patient_text.strip(),
        "citations": list(rule.citations),
        "actions": [{"id": a.id, "title": a.title, "when": list(a.when), "codes": a.codes}
                    for a in rule.actions],
        "source_attributes": {
            "developer": d.attributes.developer or m.developer,
            "funding_source": d.attributes.funding_source or m.funding_source,
            "release_date": d.attributes.released,
            "revision_date": d.attributes.revised,
            "bibliographic_citations": [c["text"] for c in rule.citations],
            "uses": list(d.attributes.uses),
        },
        "ruleset": ruleset.ruleset_info,
        "policy": ruleset.policy_info,
    }


def catalogue(ruleset: CompiledRuleset) -> list[dict[str, Any]]:
    return [rule_entry(r, ruleset) for r in ruleset.rules]
