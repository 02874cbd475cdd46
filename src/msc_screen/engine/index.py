"""Which value sets a patient's records touch, computed once per patient.

Most criteria of most patients match nothing. Looking up each coding once in a per-ruleset
memo (coding → value sets of that record kind containing it) gives one set of tokens per
patient; a criterion, or a whole rule, none of whose tokens are in it returns at once instead of
testing every record against every value set. The index only ever says "cannot match": what it
lets through is evaluated exactly as before, so findings are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..knowledge.compiled import (
    RECORD_KINDS,
    CompiledCriterion,
    CompiledRule,
    CompiledRuleset,
    net_token,
)
from ..model import Coding, PatientRecord
from ..terminology.valueset import KNOWN_KEYS, CompiledValueSet
from .safety_net import SafetyNet

SCANNED_KINDS = RECORD_KINDS
ALWAYS = "*"  # token of criteria the index cannot rule out (demographics, other rules)


class KindIndex:
    """Value sets that criteria of one record kind test, with a coding → tokens memo."""

    __slots__ = ("_memo", "_names", "_texts", "kind", "valuesets")

    def __init__(self, kind: str, valuesets: Sequence[CompiledValueSet]) -> None:
        self.kind = kind
        self.valuesets = tuple(valuesets)
        self._texts = tuple(v for v in self.valuesets if v.has_text_patterns())
        self._names = tuple(v for v in self.valuesets if v.has_ingredients())
        self._memo: dict[tuple[str | None, str], frozenset[str]] = {}

    def of_coding(self, c: Coding) -> frozenset[str]:
        key = (c.system, c.code)
        hit = self._memo.get(key)
        if hit is None:
            hit = frozenset(f"{self.kind}:{v.id}" for v in self.valuesets
                            if v.contains(c.system, c.code))
            if len(self._memo) < 200_000:
                self._memo[key] = hit
        return hit

    def add_items(self, items: Iterable[Any], out: set[str], net: SafetyNet | None) -> None:
        kind = self.kind
        for it in items:
            coded = touched = False
            codings = it.codings
            for c in codings:
                hit = self.of_coding(c)
                if hit:
                    out.update(hit)
                    touched = True
                coded = coded or c.system in KNOWN_KEYS
            text = getattr(it, "text", None)
            for v in self._names:  # drug classes by ingredient name (memoised per string)
                if any(c.display and v.ingredient_in(c.display) for c in codings) or (
                        text and v.ingredient_in(text)):
                    out.add(f"{kind}:{v.id}")
                    touched = True
            if not coded and self._texts:
                free = free_text(it)
                if free:  # uncoded records match by text patterns (rare: no memo)
                    out.update(f"{kind}:{v.id}" for v in self._texts
                               if v.text_span(free) is not None)
            if net is not None and not touched:
                for h in net.hits(kind, codings, text):
                    out.add(net_token(kind, h.rule))


def free_text(it: Any) -> str | None:
    """The words of a record with no code in a known system: its text, else the display of a
    local code (``{system: urn:local, code: CA1, display: "Breast cancer"}``)."""
    text: str | None = getattr(it, "text", None)
    if text and text.strip():
        return text
    for c in it.codings:
        if c.display and c.display.strip():
            return str(c.display)
    return None


def ruleset_index(ruleset: CompiledRuleset) -> dict[str, KindIndex]:
    idx: dict[str, KindIndex] | None = ruleset.memo.get("kind-index")
    if idx is None:
        idx = {k: KindIndex(k, vss) for k, vss in ruleset.valuesets_by_kind().items()}
        ruleset.memo["kind-index"] = idx
    return idx


def criterion_tokens(c: CompiledCriterion, rule_id: str) -> frozenset[str]:
    """What a patient must have for ``c`` to possibly match (see ``record_tokens``)."""
    if c.kind in SCANNED_KINDS:
        return c.vs_tokens
    if c.kind == "questionnaire":
        return frozenset({f"questionnaire:{c.link_id}"})
    if c.kind == "note":
        return frozenset({f"note:{rule_id}"})
    if c.kind == "rule" and c.rule:
        return frozenset(finding_token(c.rule, s) for s in c.rule_status)
    return frozenset({ALWAYS})


def finding_token(rule_id: str, status: str) -> str:
    """What a rule's finding adds to the patient's tokens once it is known (rules are
    evaluated in order, and ``rule`` criteria only read earlier rules): a criterion on another
    rule's finding is then ruled out like one on records."""
    return f"rule:{rule_id}:{status}"


def rule_tokens(rule: CompiledRule) -> frozenset[str]:
    hit: frozenset[str] | None = rule.memo.get("tokens")
    if hit is None:
        out: set[str] = set()
        for c in (*rule.present_if, *rule.unknown_if, *rule.absent_if):
            out |= criterion_tokens(c, rule.id)
        hit = rule.memo["tokens"] = frozenset(out)
    return hit


def record_tokens(record: PatientRecord, ruleset: CompiledRuleset,
                  mention_rules: Iterable[str], net: SafetyNet | None = None) -> set[str]:
    """One set per patient: a criterion or rule none of whose tokens are in it cannot match,
    so a rule with no possible match gets its evidence-free default finding."""
    idx = ruleset_index(ruleset)
    out = {ALWAYS}
    idx["condition"].add_items(record.conditions, out, net)
    idx["observation"].add_items(record.observations, out, net)
    idx["medication"].add_items(record.medications, out, net)
    idx["procedure"].add_items(record.procedures, out, net)
    idx["allergy"].add_items(record.allergies, out, net)
    for a in record.answers:
        out.add(f"questionnaire:{a.link_id}")
    for r in mention_rules:
        out.add(f"note:{r}")
    return out
