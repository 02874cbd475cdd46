"""A ruleset compiled under a policy: parameters resolved, value sets compiled, order fixed.

Compiling once per (knowledge base, policy) keeps the engine's hot path free of YAML, dict
look-ups of parameters and value-set construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import PolicyError
from ..terminology.systems import system_key
from ..terminology.valueset import CodeFilter, CompiledValueSet
from .loader import KnowledgeBase
from .schema import (
    Action,
    Citation,
    CoverageKind,
    Criterion,
    PolicyDef,
    RuleDef,
    SeverityName,
    ValueSetDef,
)

# criterion kinds matched against a patient's coded records by value set
RECORD_KINDS = ("condition", "observation", "medication", "procedure", "allergy")


@dataclass(frozen=True, slots=True)
class CompiledCriterion:
    kind: str
    rule_id: str  # the rule it belongs to (the safety net and notes read per rule)
    label: str | None
    valuesets: tuple[CompiledValueSet, ...]
    excludes: tuple[CompiledValueSet, ...]
    ended_by: tuple[CompiledValueSet, ...]
    status: str
    onset_within_days: int | None
    resolved_within_days: int | None
    within_days: int | None
    value: str
    positive: CompiledValueSet | None
    negative: CompiledValueSet | None
    most_recent: bool
    default_upper_limits: dict[str, float]
    link_id: str | None
    answers: tuple[Any, ...]
    accept_historical: bool
    rule: str | None
    rule_status: tuple[str, ...]
    min_age: int | None
    max_age: int | None
    sex: tuple[str, ...]
    max_severity: SeverityName | None
    reason: str | None
    source: Criterion
    data: tuple[str, ...] = ()  # coverage criteria: the kinds of data they test
    data_status: str = "none-provided"
    # "<kind>:<value-set id>" of ``valuesets`` (and, for criteria that raise concern, the safety
    # net's "net:<kind>:<rule>"): what a record must touch for this criterion to possibly match
    # (the engine's per-patient index, engine/index.py)
    vs_tokens: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    title: str
    category: str
    origin: str
    severity: SeverityName
    summary_present: str
    summary_absent: str
    summary_unknown: str
    sexes: tuple[str, ...]
    min_age: int | None
    max_age: int | None
    present_if: tuple[CompiledCriterion, ...]
    unknown_if: tuple[CompiledCriterion, ...]
    absent_if: tuple[CompiledCriterion, ...]
    otherwise: str
    uncertain_severity: SeverityName
    unknown_severity: SeverityName
    citations: tuple[dict[str, Any], ...]
    actions: tuple[Action, ...]
    parameters: dict[str, Any]
    definition: RuleDef
    # alternatives of kinds of data, one of which must be wholly provided for "absent" to mean
    # something; ``needed`` is every kind they name
    needs: tuple[frozenset[str], ...] = ()
    needed: frozenset[str] = frozenset()
    # per-rule memo for the engine (actions, evidence-free findings); lives and dies with
    # the rule, so it can never be confused with another ruleset's
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CompiledRuleset:
    id: str
    version: str
    sha256: str
    policy_name: str
    policy_sha256: str
    rules: tuple[CompiledRule, ...]
    kb: KnowledgeBase
    policy: PolicyDef
    # the kinds of data the rules read, in order, each with its value sets compiled
    coverage: tuple[tuple[CoverageKind, tuple[CompiledValueSet, ...]], ...] = ()
    # the questions ("answer:<linkId>") some rule needs, sorted
    needed_answers: tuple[str, ...] = ()
    # the engine's per-ruleset memos (value-set index); live and die with this ruleset
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ruleset_info(self) -> dict[str, str]:
        return {"id": self.id, "version": self.version, "sha256": self.sha256}

    @property
    def policy_info(self) -> dict[str, str]:
        return {"name": self.policy_name, "sha256": self.policy_sha256}

    def valuesets_by_kind(self, enders: bool = False) -> dict[str, tuple[CompiledValueSet, ...]]:
        """Per record kind (``RECORD_KINDS``), the value sets its criteria test, by id; with
        ``enders``, also every ``ended_by`` set under conditions and procedures (a delivery, of
        either kind, ends a pregnancy)."""
        per_kind: dict[str, dict[str, CompiledValueSet]] = {k: {} for k in RECORD_KINDS}
        for r in self.rules:
            for c in (*r.present_if, *r.unknown_if, *r.absent_if):
                if c.kind in per_kind:
                    per_kind[c.kind].update((v.id, v) for v in c.valuesets)
                if enders:
                    for k in ("condition", "procedure"):
                        per_kind[k].update((v.id, v) for v in c.ended_by)
        return {k: tuple(sorted(v.values(), key=lambda x: x.id)) for k, v in per_kind.items()}

    @property
    def record_filters(self) -> dict[str, CodeFilter]:
        """Per record kind, every value set the rules read of it as a ``CodeFilter``. The reader
        converts only records that pass (or that carry no code in a known system, which
        free-text patterns may match): the rest cannot change a finding."""
        hit: dict[str, CodeFilter] | None = self.memo.get("record-filters")
        if hit is None:
            hit = {k: CodeFilter(vss) for k, vss in self.valuesets_by_kind(enders=True).items()}
            self.memo["record-filters"] = hit
        return hit

    def rule(self, rule_id: str) -> CompiledRule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def net_token(kind: str, rule_id: str) -> str:
    """The index token of a record of ``kind`` whose text the safety net reads as ``rule_id``'s
    concept (engine/safety_net.py)."""
    return f"net:{kind}:{rule_id}"


def compile_valueset(vs: ValueSetDef) -> CompiledValueSet:
    cvs = CompiledValueSet(vs.id, vs.title)
    for inc in vs.include:
        key = system_key(inc.system) or inc.system
        cvs.include(key, [c.code for c in inc.codes], inc.ranges)
    # the codes taken from published sources (the generated valuesets/expansions/<id>.tsv)
    by_system: dict[str, list[str]] = {}
    for ec in vs.expansion:
        by_system.setdefault(ec.system, []).append(ec.code)
    for system, codes in by_system.items():
        cvs.include(system_key(system) or system, codes)
    for exc in vs.exclude:
        key = system_key(exc.system) or exc.system
        cvs.exclude(key, [c.code for c in exc.codes], exc.ranges)
    cvs.set_text_patterns(vs.text_patterns)
    cvs.set_ingredients(vs.ingredients)
    return cvs


def _citation_dict(c: Citation) -> dict[str, Any]:
    d: dict[str, Any] = {"id": c.id, "text": c.text}
    if c.doi:
        d["doi"] = c.doi
    if c.url:
        d["url"] = c.url
    return d


def compile_ruleset(kb: KnowledgeBase, policy: PolicyDef, policy_sha256: str) -> CompiledRuleset:
    vs_cache: dict[str, CompiledValueSet] = {}

    def vs(ref: str) -> CompiledValueSet:
        if ref not in vs_cache:
            vs_cache[ref] = compile_valueset(kb.valuesets[ref])
        return vs_cache[ref]

    rules: list[CompiledRule] = []
    for rdef in kb.ordered_rules():
        ov = policy.rules.get(rdef.id)
        if ov is not None and not ov.enabled:
            continue
        params = {k: p.default for k, p in rdef.parameters.items()}
        if ov is not None:
            params.update(ov.parameters)

        def resolve(v: Any, rid: str = rdef.id, params: dict[str, Any] = params) -> Any:
            if isinstance(v, str) and v.startswith("$"):
                if v[1:] not in params:
                    raise PolicyError(policy.name, f"rule {rid!r}: unknown parameter {v}")
                return params[v[1:]]
            return v

        def vs_list(v: Any) -> tuple[CompiledValueSet, ...]:
            v = resolve(v)
            if v is None:
                return ()
            items = [v] if isinstance(v, str) else list(v)
            return tuple(vs(resolve(i)) for i in items)

        def crit(c: Criterion, lenient: bool, rid: str = rdef.id) -> CompiledCriterion:
            valuesets = vs_list(c.valueset)
            return CompiledCriterion(
                kind=c.kind,
                rule_id=rid,
                label=c.label,
                valuesets=valuesets,
                vs_tokens=frozenset([*(f"{c.kind}:{v.id}" for v in valuesets),
                                     *([net_token(c.kind, rid)] if lenient else [])])
                if c.kind in RECORD_KINDS else frozenset(),
                excludes=vs_list(c.exclude_valuesets),
                ended_by=tuple(vs(x) for x in c.ended_by),
                status=c.status,
                onset_within_days=resolve(c.onset_within_days),
                resolved_within_days=resolve(c.resolved_within_days),
                within_days=resolve(c.within_days),
                value=c.value,
                positive=vs(c.positive_valueset) if c.positive_valueset else None,
                negative=vs(c.negative_valueset) if c.negative_valueset else None,
                most_recent=c.most_recent,
                default_upper_limits=dict(c.default_upper_limits),
                link_id=c.link_id,
                answers=tuple(c.answers),
                accept_historical=bool(resolve(c.accept_historical)),
                rule=c.rule,
                rule_status=tuple(c.rule_status),
                min_age=resolve(c.min_age),
                max_age=resolve(c.max_age),
                sex=tuple(c.sex),
                max_severity=c.max_severity,
                reason=c.reason,
                source=c,
                data=tuple(c.data),
                data_status=c.data_status,
            )

        rules.append(
            CompiledRule(
                id=rdef.id,
                title=rdef.title,
                category=rdef.category,
                origin=rdef.origin,
                severity=(ov.severity if ov and ov.severity else rdef.severity),
                summary_present=rdef.summary.present,
                summary_absent=rdef.summary.absent,
                summary_unknown=rdef.summary.unknown or "Data needed to decide is missing.",
                sexes=tuple(rdef.applicability.sex),
                min_age=resolve(rdef.applicability.min_age),
                max_age=resolve(rdef.applicability.max_age),
                present_if=tuple(crit(c, True) for c in rdef.present_if),
                unknown_if=tuple(crit(c, True) for c in rdef.unknown_if),
                absent_if=tuple(crit(c, False) for c in rdef.absent_if),
                otherwise=rdef.otherwise,
                uncertain_severity=rdef.uncertain_severity,
                unknown_severity=rdef.unknown_severity,
                citations=tuple(_citation_dict(kb.citations[c]) for c in rdef.citations),
                actions=tuple(rdef.actions),
                parameters=params,
                definition=rdef,
                needs=tuple(frozenset(a) for a in rdef.needs),
                needed=frozenset(k for a in rdef.needs for k in a),
            )
        )
    _check_rule_order(rules)
    coverage = tuple((k, tuple(vs(v) for v in k.valuesets)) for k in kb.coverage)
    answers = tuple(sorted({n for r in rules for n in r.needed if n.startswith("answer:")}))
    return CompiledRuleset(
        id=kb.manifest.id,
        version=kb.manifest.version,
        sha256=kb.sha256,
        policy_name=policy.name,
        policy_sha256=policy_sha256,
        rules=tuple(rules),
        kb=kb,
        policy=policy,
        coverage=coverage,
        needed_answers=answers,
    )


def _check_rule_order(rules: list[CompiledRule]) -> None:
    """Cross-rule criteria must refer to rules evaluated earlier (a DAG in report order)."""
    seen: set[str] = set()
    ids = {r.id for r in rules}
    for r in rules:
        for c in (*r.present_if, *r.unknown_if, *r.absent_if):
            if c.kind == "rule" and c.rule in ids and c.rule not in seen:
                raise PolicyError(r.id, f"refers to rule {c.rule!r} which is ordered after it")
        seen.add(r.id)
