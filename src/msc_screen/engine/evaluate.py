"""Rule evaluation and the decision: findings worst-first, evidence sorted, output deterministic."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import msgspec

from ..knowledge.compiled import CompiledRule, CompiledRuleset
from ..model import (
    DECISIONS,
    SEVERITY_RANK,
    STATUSES,
    Assessment,
    Decision,
    Evidence,
    Finding,
    KindCoverage,
    Mention,
    NoteItem,
    PatientRecord,
    Severity,
)
from .context import Context, Match, age_on
from .coverage import describe, provided, record_coverage, short_of_data
from .criteria import match_all
from .index import finding_token, record_tokens, rule_tokens
from .safety_net import SafetyNet, safety_net


class NotesExtractor(Protocol):
    """Finds rule-concept mentions, with assertion context, in a note's text."""

    def extract(self, text: str) -> list[Mention]: ...


_DECISION_OF: dict[str, Decision] = {
    "contraindicated": "contraindicated",
    "physician-review": "physician-review",
    "needs-information": "needs-information",
}


def _less_severe(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


def _worst(sevs: list[Severity]) -> Severity:
    return min(sevs, key=lambda s: SEVERITY_RANK[s])


def _match_severity(rule: CompiledRule, m: Match) -> Severity:
    if m.cap is None:
        return rule.severity
    cap: Severity = rule.uncertain_severity if m.cap == "uncertain" else m.cap  # type: ignore[assignment]
    return _less_severe(rule.severity, cap)


def _applicable(rule: CompiledRule, ctx: Context) -> str | None:
    """None when the rule applies; else why not. Missing sex or age never excludes anyone."""
    rec = ctx.record
    if rule.sexes and rec.gender is not None and rec.gender not in rule.sexes:
        return f"not applicable (sex {rec.gender})"
    if ctx.age is not None:
        if rule.min_age is not None and ctx.age < rule.min_age:
            return f"not applicable (age {ctx.age})"
        if rule.max_age is not None and ctx.age > rule.max_age:
            return f"not applicable (age {ctx.age})"
    return None


def _dedupe(evs: list[Evidence]) -> tuple[Evidence, ...]:
    seen: dict[tuple[object, ...], Evidence] = {}
    for e in evs:
        k = (e.reference, e.code, e.span, e.detail)
        if k not in seen:
            seen[k] = e
    return tuple(sorted(seen.values(), key=Evidence.sort_key))


def _actions(rule: CompiledRule, status: str) -> tuple[dict[str, object], ...]:
    key = ("actions", status)
    hit: tuple[dict[str, object], ...] | None = rule.memo.get(key)
    if hit is None:
        hit = rule.memo[key] = _build_actions(rule, status)
    return hit


def _build_actions(rule: CompiledRule, status: str) -> tuple[dict[str, object], ...]:
    from ..terminology.systems import canonical_uri, system_key

    out: list[dict[str, object]] = []
    for a in rule.actions:
        if status not in a.when:
            continue
        out.append({
            "id": a.id,
            "title": a.title,
            "resource": a.resource,
            "codes": [
                {"system": canonical_uri(system_key(c["system"]) or c["system"]),
                 "code": str(c["code"]), "display": c.get("display")}
                for c in a.codes
            ],
        })
    return tuple(out)


def _finding(rule: CompiledRule, status: str, severity: Severity, summary: str,
             matches: list[Match]) -> Finding:
    if not matches:
        # Findings without evidence are the same for every patient: build each once
        # (immutable; this is most findings of most patients).
        key = ("finding", status, severity, summary)
        hit: Finding | None = rule.memo.get(key)
        if hit is None and len(rule.memo) < 5_000:
            hit = rule.memo[key] = Finding(
                rule=rule.id, title=rule.title, origin=rule.origin,
                category=rule.category, severity=severity,
                status=status,  # type: ignore[arg-type]
                summary=summary, citations=rule.citations,
                actions=_actions(rule, status))
        if hit is not None:
            return hit
    return Finding(
        rule=rule.id, title=rule.title, origin=rule.origin, category=rule.category,
        severity=severity, status=status,  # type: ignore[arg-type]
        summary=summary, evidence=_dedupe([m.evidence for m in matches]),
        citations=rule.citations, actions=_actions(rule, status),
    )


def _default(rule: CompiledRule) -> Finding:
    """The finding when no criterion matches (``otherwise``), built once per rule."""
    hit: Finding | None = rule.memo.get("default")
    if hit is None:
        if rule.otherwise == "present":
            hit = _finding(rule, "present", rule.severity, rule.summary_present, [])
        elif rule.otherwise == "unknown":
            hit = _finding(rule, "unknown", rule.unknown_severity, rule.summary_unknown, [])
        else:
            hit = _finding(rule, "absent", rule.severity, rule.summary_absent, [])
        rule.memo["default"] = hit
    return hit


_Plan = tuple[CompiledRule, frozenset[str], bool, Finding, dict[str, str] | None]


def _plan(ruleset: CompiledRuleset) -> tuple[_Plan, ...]:
    """Per rule, once per ruleset: its index tokens, whether it applies to everyone (no sex or
    age limits, so its evidence-free finding is the same for every patient), that finding, and
    the tokens its finding adds by status (only for rules another rule's criteria read)."""
    hit = ruleset.memo.get("plan")
    if hit is None:
        read = {c.rule for r in ruleset.rules for c in (*r.present_if, *r.unknown_if,
                                                         *r.absent_if) if c.kind == "rule"}
        hit = ruleset.memo["plan"] = tuple(
            (r, rule_tokens(r), not r.sexes and r.min_age is None and r.max_age is None,
             _default(r),
             {s: finding_token(r.id, s) for s in STATUSES} if r.id in read else None)
            for r in ruleset.rules)
    return hit


def _unmatched(rule: CompiledRule, ctx: Context) -> Finding:
    """The finding of a rule with sex or age limits that nothing in the record can match: a
    function of the patient's sex and age alone, so kept per (sex, age) on the rule."""
    key = ("unmatched", ctx.record.gender, ctx.age)
    hit: Finding | None = rule.memo.get(key)
    if hit is None:
        hit = evaluate_rule(rule, ctx)
        if len(rule.memo) < 5_000:
            rule.memo[key] = hit
    return hit


def evaluate_rule(rule: CompiledRule, ctx: Context) -> Finding:
    why_not = _applicable(rule, ctx)
    if why_not is not None:
        return _finding(rule, "absent", rule.severity, f"{rule.summary_absent} ({why_not})", [])
    if ctx.tokens is None or not rule_tokens(rule).isdisjoint(ctx.tokens):
        found = _match_rule(rule, ctx)
        if found is not None:
            return found
    return _default(rule)


def _match_rule(rule: CompiledRule, ctx: Context) -> Finding | None:
    matched = match_all(rule.present_if, ctx, True, rule.id)
    present = [m for m in matched if not m.unknown]
    if present:
        sev = _worst([_match_severity(rule, m) for m in present])
        summary = rule.summary_present
        if sev != rule.severity:
            reasons = sorted({m.why for m in present if m.why})
            if reasons:
                summary += f" (for review: {'; '.join(reasons)})"
        return _finding(rule, "present", sev, summary, present)

    unsure = [m for m in matched if m.unknown]
    unknown = unsure + match_all(rule.unknown_if, ctx, True, rule.id)
    if unknown:
        summary = rule.summary_unknown
        reasons = sorted({m.why for m in unsure if m.why})
        if reasons:
            summary += f" ({'; '.join(reasons)})"
        return _finding(rule, "unknown", rule.unknown_severity, summary, unknown)

    absent = match_all(rule.absent_if, ctx, False, rule.id)
    if absent:
        return _finding(rule, "absent", rule.severity, rule.summary_absent, absent)
    return None


_STATUS_RANK = {"present": 0, "unknown": 1, "absent": 2}
_ORDER = {(st, sev): (r, SEVERITY_RANK[sev]) for st, r in _STATUS_RANK.items()
          for sev in SEVERITY_RANK}


def _order(f: Finding) -> tuple[int, int]:
    """Findings worst-first (a stable sort keeps rule order within a rank)."""
    return _ORDER[f.status, f.severity]


_DECISION_RANK = {d: i for i, d in enumerate(DECISIONS)}


def decide(findings: tuple[Finding, ...]) -> Decision:
    worst: Decision = "no-contraindication-found"
    rank = _DECISION_RANK
    for f in findings:
        if f.status == "absent":
            continue
        d = _DECISION_OF.get(f.severity)
        if d is not None and rank[d] < rank[worst]:
            worst = d
    return worst


QUESTIONNAIRE_ANSWER = "text/x-questionnaire-answer"


def past_questions(ruleset: CompiledRuleset) -> frozenset[str]:
    """The questions the knowledge base says are about the patient's history (``about:
    past``): free text answering them is history, whatever its words."""
    hit: frozenset[str] | None = ruleset.memo.get("past-questions")
    if hit is None:
        hit = frozenset(q.link_id for r in ruleset.rules for q in r.definition.questions
                        if q.about == "past")
        ruleset.memo["past-questions"] = hit
    return hit


def _note_mentions(notes: list[NoteItem], extractor: NotesExtractor | None,
                   past: frozenset[str] = frozenset()
                   ) -> tuple[dict[str, list[tuple[Mention, str]]], list[dict[str, object]]]:
    mentions: dict[str, list[tuple[Mention, str]]] = {}
    docs: list[dict[str, object]] = []
    for n in sorted(notes, key=lambda n: n.reference):
        if extractor is None:
            docs.append({"reference": n.reference, "status": "not analysed",
                         "reason": "no notes extractor is configured"})
            continue
        found = extractor.extract(n.text)
        if (past and n.content_type == QUESTIONNAIRE_ANSWER
                and n.reference.rpartition("#")[2] in past):
            found = [msgspec.structs.replace(m, historical=True) for m in found]
        for m in found:
            mentions.setdefault(m.rule, []).append((m, n.reference))
        docs.append({"reference": n.reference, "status": "analysed", "mentions": len(found)})
    return mentions, docs


def with_coverage(rule: CompiledRule, f: Finding, ctx: Context) -> Finding:
    """``f`` unless it is an evidence-free "absent" of a rule that applies and none of whose
    needed kinds of data was provided: then "not enough data" (unknown), never absent."""
    if (f.status == "absent" and not f.evidence and rule.needs
            and not any(alt <= ctx.provided for alt in rule.needs)
            and _applicable(rule, ctx) is None):
        return _not_enough_data(rule, ctx.coverage)
    return f


def _not_enough_data(rule: CompiledRule, coverage: dict[str, KindCoverage]) -> Finding:
    """A rule none of whose alternatives of data was wholly provided: unknown, never absent."""
    why = describe(coverage, rule.needed)
    return _finding(rule, "unknown", rule.unknown_severity,
                    f"{rule.summary_unknown} (not enough data: {why})", [])


def _unnamed(record: PatientRecord, net: SafetyNet) -> list[str]:
    """Warnings for conditions and medications no value set claims and no words name."""
    out = []
    for kind, items in (("condition", record.conditions), ("medication", record.medications)):
        for it in items:
            why = net.unnamed(kind, it.codings, it.text)
            if why is not None:
                out.append(f"{it.reference}: {why}")
    return sorted(out)  # not in input order: output never depends on it


def evaluate(
    record: PatientRecord,
    ruleset: CompiledRuleset,
    as_of: dt.date,
    notes: NotesExtractor | None = None,
) -> Assessment:
    """Screen one patient. Pure: same inputs, byte-identical ``Assessment.to_json()``."""
    birth = record.birth_date
    age = age_on(birth.lo, as_of) if birth is not None else None
    mentions, docs = _note_mentions(record.notes, notes, past_questions(ruleset))
    net = safety_net(ruleset)
    tokens = record_tokens(record, ruleset, mentions, net)
    coverage = record_coverage(record, ruleset, tokens)
    have = provided(coverage)
    short = short_of_data(ruleset, have)
    ctx = Context(record=record, as_of=as_of, age=age, mentions=mentions, tokens=tokens,
                  net=net, coverage=coverage, provided=have)
    warnings = list(dict.fromkeys(record.warnings))
    warnings.extend(_unnamed(record, net))
    if not record.has_patient_resource:
        warnings.append("no Patient resource: sex- and age-specific rules applied conservatively")
    else:
        if record.gender is None:
            warnings.append("sex not recorded: sex-specific rules applied")
        if birth is None:
            warnings.append("birth date not recorded: age limits not applied")
    if record.deceased and (record.deceased_date is None or record.deceased_date.lo <= as_of):
        when = f" on {record.deceased_date.text}" if record.deceased_date else ""
        warnings.append(f"patient is recorded as deceased{when}")
    if any(d["status"] == "not analysed" for d in docs):
        warnings.append(f"{sum(d['status'] == 'not analysed' for d in docs)} clinical note(s) "
                        "not analysed: read them before relying on this result")
    findings: list[Finding] = []
    by_rule = ctx.findings
    for rule, rule_toks, plain, default, adds in _plan(ruleset):
        # the common cases, inline: a rule that nothing in the record can match
        if tokens.isdisjoint(rule_toks):
            f = default if plain else _unmatched(rule, ctx)
        else:
            f = evaluate_rule(rule, ctx)
        if rule.id in short and f.status == "absent" and not f.evidence:
            f = with_coverage(rule, f, ctx)
        by_rule[rule.id] = f
        if adds is not None:
            tokens.add(adds[f.status])
        findings.append(f)
    ordered = tuple(sorted(findings, key=_order))
    return Assessment(
        patient_id=record.id,
        as_of=as_of,
        decision=decide(ordered),
        findings=ordered,
        ruleset=ruleset.ruleset_info,
        policy=ruleset.policy_info,
        warnings=tuple(warnings),
        documents=tuple(docs),
        coverage=coverage,
    )
