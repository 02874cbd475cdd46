"""The safety net: a record whose codes are in no value set is never passed over in silence.

Value sets can only list the codes someone thought of; real records carry others (a SNOMED
descendant, a product-level drug code, a site's local code). When none of a record's codes is
in a value set that the rules read for its kind, its text and coding displays go through the
notes vocabulary and the ConText assertion pipeline, as a short note would. An affirmed
mention of a rule's concept lets that rule's criteria of the record's kind match it, marked
uncertain and at most physician-review, with a reason naming the code and the words matched.
Negated, family, hypothetical (screening, rule-out) mentions never count; historical ones only
for rules whose note criterion accepts history. Codes an informaticist reviewed as bearing on no
rule (``knowledge/terminology/reviewed-codes.yaml``) are left alone.

The same assertion pipeline judges value-set text patterns on uncoded records ("no evidence
of malignancy" is not a malignancy). Everything here is memoised per distinct coding and text:
records repeat the same few hundred codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from msgspec import Struct

from ..knowledge.compiled import RECORD_KINDS, CompiledRuleset
from ..knowledge.loader import package_root
from ..model import Coding
from ..notes import get_extractor
from ..notes.context import Assertion
from ..notes.extractor import Extractor
from ..notes.vocabulary import parse_vocabulary
from ..terminology.systems import normalise_code, system_key, system_name
from ..terminology.valueset import KNOWN_KEYS, CodeFilter, CompiledValueSet

_MEMO_CAP = 200_000
# kinds whose unreadable records are named in a warning: where contraindications are recorded
# (an unnamed vital sign or procedure code is routine and would only be noise)
UNNAMED_KINDS = frozenset({"condition", "medication"})
_NONE: tuple[NetHit, ...] = ()


class NetHit(Struct, frozen=True):
    """An affirmed mention of ``rule``'s concept in the text of a record no value set claims."""

    rule: str
    words: str  # the words matched ("malignant neoplasm")
    coding: Coding | None  # the coding whose display named it; None: the record's own text
    uncertain: bool  # stated with uncertainty ("suspected", "possible")
    reason: str  # for the evidence and the finding's summary


def _quote(s: str, limit: int = 120) -> str:
    s = " ".join(s.split())
    return f"“{s if len(s) <= limit else s[:limit - 1] + '…'}”"


class SafetyNet:
    """Per compiled ruleset: which records no value set claims, and what their text says."""

    __slots__ = ("_assert_memo", "_extractor", "_filters", "_history", "_hits", "_ingredients",
                 "_keep", "_mentions", "_reviewed", "_rules")

    def __init__(self, ruleset: CompiledRuleset, extractor: Extractor) -> None:
        self._extractor = extractor
        self._filters: dict[str, CodeFilter] = ruleset.record_filters
        by_kind = ruleset.valuesets_by_kind(enders=True)
        self._ingredients: dict[str, tuple[CompiledValueSet, ...]] = {
            k: tuple(v for v in vss if v.has_ingredients()) for k, vss in by_kind.items()}
        rules: dict[str, set[str]] = {k: set() for k in RECORD_KINDS}
        history: set[str] = set()
        for r in ruleset.rules:
            for c in (*r.present_if, *r.unknown_if):  # criteria that raise concern only
                if c.kind in rules:
                    rules[c.kind].add(r.id)
                elif c.kind == "note" and c.accept_historical:
                    history.add(r.id)
        self._rules = {k: frozenset(v) for k, v in rules.items()}
        self._history = frozenset(history)
        self._reviewed = frozenset(
            (key, normalise_code(key, rc.code))
            for rc in ruleset.kb.reviewed_codes
            for key in (system_key(rc.system) or rc.system,))
        self._hits: dict[tuple[str, tuple[Coding, ...], str | None], tuple[NetHit, ...]] = {}
        self._keep: dict[tuple[Any, ...], bool] = {}
        self._mentions: dict[str, list[tuple[str, str, Assertion]]] = {}
        self._assert_memo: dict[tuple[str, int, int], Assertion] = {}

    # ------------------------------------------------------------------ what value sets claim
    def named_ingredient(self, kind: str, codings: Iterable[Coding], text: str | None
                         ) -> tuple[CompiledValueSet, str, Coding | None] | None:
        """The first value set of ``kind`` one of whose ingredient names the record names."""
        for vs in self._ingredients.get(kind, ()):
            for c in codings:
                if c.display:
                    name = vs.ingredient_in(c.display)
                    if name:
                        return vs, name, c
            if text:
                name = vs.ingredient_in(text)
                if name:
                    return vs, name, None
        return None

    def claimed(self, kind: str, codings: tuple[Coding, ...], text: str | None) -> bool:
        """Does a value set of ``kind`` claim the record (a code, or an ingredient name)?"""
        f = self._filters.get(kind)
        if f is not None and any(f.wants(c.system, c.code) for c in codings):
            return True
        return self.named_ingredient(kind, codings, text) is not None

    def reviewed(self, codings: Iterable[Coding]) -> bool:
        return any((c.system, normalise_code(c.system, c.code)) in self._reviewed
                   for c in codings)

    def classify(self, kind: str, codings: tuple[Coding, ...], text: str | None
                 ) -> tuple[str, tuple[str, ...]]:
        """What the engine makes of a record, for the terminology audit: ("value-set", ()) when
        a value set claims it (code or ingredient), ("reviewed", ()) when its code was reviewed
        as bearing on no rule, ("safety-net", rules) when the net reads it as those rules'
        concepts, ("unnamed", ()) when it has no words to read, else ("unmatched", ())."""
        if self.claimed(kind, codings, text):
            return "value-set", ()
        if self.reviewed(codings):
            return "reviewed", ()
        hits = self.hits(kind, codings, text)
        if hits:
            return "safety-net", tuple(h.rule for h in hits)
        if not (text and text.strip()) and not any(c.display for c in codings):
            return "unnamed", ()
        return "unmatched", ()

    # ------------------------------------------------------------------ the net
    def hits(self, kind: str, codings: tuple[Coding, ...], text: str | None
             ) -> tuple[NetHit, ...]:
        """Rules whose concept the text of an unclaimed record affirms (none when a value set
        claims it, its code was reviewed, or no rule reads the kind)."""
        key = (kind, codings, text)
        hit = self._hits.get(key)
        if hit is None:
            hit = self._compute(kind, codings, text)
            if len(self._hits) < _MEMO_CAP:
                self._hits[key] = hit
        return hit

    def keeps(self, kind: str, coding: tuple[tuple[str | None, str, str | None], ...],
              text: str | None) -> bool:
        """For the reader's record filter: must a record whose codes no value set reads still
        be converted, because an ingredient name or the net could match it? ``coding`` is
        (system key or URI, code, display) per coding."""
        key = (kind, coding, text)
        hit = self._keep.get(key)
        if hit is None:
            codings = tuple(Coding(s, c, d) for s, c, d in coding)
            hit = (self.named_ingredient(kind, codings, text) is not None
                   or bool(self.hits(kind, codings, text))
                   or self.unnamed(kind, codings, text) is not None)
            if len(self._keep) < _MEMO_CAP:
                self._keep[key] = hit
        return hit

    def unnamed(self, kind: str, codings: tuple[Coding, ...], text: str | None) -> str | None:
        """Why a condition or medication cannot be screened at all: its codes are in no value
        set and it carries no words (no display, no text) for the net to read. None when it
        can be read, or its code was reviewed."""
        if (kind not in UNNAMED_KINDS or not codings or (text and text.strip())
                or any(c.display and c.display.strip() for c in codings)
                or self.claimed(kind, codings, text) or self.reviewed(codings)):
            return None
        c = codings[0]
        return (f"{system_name(c.system)} {c.code} is in no value set and has no name; "
                "it could not be screened")

    def _compute(self, kind: str, codings: tuple[Coding, ...], text: str | None
                 ) -> tuple[NetHit, ...]:
        wanted = self._rules.get(kind)
        if not wanted or self.claimed(kind, codings, text) or self.reviewed(codings):
            return _NONE
        sources: list[tuple[str, Coding | None]] = []
        seen: set[str] = set()
        if text and text.strip():
            sources.append((text, None))
            seen.add(text.strip().lower())
        for c in codings:
            if c.display and c.display.strip().lower() not in seen:
                sources.append((c.display, c))
                seen.add(c.display.strip().lower())
        out: dict[str, NetHit] = {}
        for s, coding in sources:
            for rule, words, a in self._mentions_in(s):
                if rule not in wanted or rule in out or not self.admissible(rule, a):
                    continue
                out[rule] = NetHit(rule=rule, words=words, coding=coding,
                                   uncertain=a.uncertain,
                                   reason=_reason(codings, coding, s, words, a.uncertain))
        return tuple(out[r] for r in sorted(out))

    def _mentions_in(self, s: str) -> list[tuple[str, str, Assertion]]:
        hit = self._mentions.get(s)
        if hit is None:
            hit = [(m.rule, m.text, Assertion(m.negated, m.historical, m.family, m.hypothetical,
                                               m.uncertain))
                   for m in self._extractor.extract(s)]
            if len(self._mentions) < _MEMO_CAP:
                self._mentions[s] = hit
        return hit

    # ------------------------------------------------------------------ assertion context
    def admissible(self, rule: str, a: Assertion) -> bool:
        """Does a mention with these flags count for ``rule``? Negated, a relative's or
        hypothetical never; historical only where the rule reads history."""
        if a.negated or a.family or a.hypothetical:
            return False
        return not a.historical or rule in self._history

    def assertion(self, text: str, start: int, end: int) -> Assertion:
        key = (text, start, end)
        hit = self._assert_memo.get(key)
        if hit is None:
            hit = self._extractor.assert_span(text, start, end)
            if len(self._assert_memo) < _MEMO_CAP:
                self._assert_memo[key] = hit
        return hit


def _reason(codings: tuple[Coding, ...], coding: Coding | None, source: str, words: str,
            uncertain: bool) -> str:
    known = [c for c in codings if c.system in KNOWN_KEYS]
    where = "its display" if coding is not None else "its text"
    if coding is not None and coding.system in KNOWN_KEYS:
        subject = f"{system_name(coding.system)} {coding.code} is in no value set"
    elif known:
        c = known[0]
        subject = f"{system_name(c.system)} {c.code} is in no value set"
    elif codings:
        c = coding or codings[0]
        subject = f"code {c.code} is in no known code system ({c.system or 'no system'})"
    else:
        subject = "the record has no code"
    out = f"{subject}; {where} {_quote(source)} names «{words}»"
    if uncertain:
        out += ", stated with uncertainty"
    return out


def safety_net(ruleset: CompiledRuleset) -> SafetyNet:
    """The ruleset's net, built once. The packaged knowledge base shares the process-wide notes
    extractor; another knowledge-base root gets one built from its own vocabulary."""
    hit: SafetyNet | None = ruleset.memo.get("safety-net")
    if hit is None:
        hit = SafetyNet(ruleset, _extractor_for(ruleset))
        ruleset.memo["safety-net"] = hit
    return hit


def _extractor_for(ruleset: CompiledRuleset) -> Extractor:
    kb = ruleset.kb
    if kb.root.resolve() == package_root().resolve():
        return get_extractor()
    vocab = {rid: parse_vocabulary(rid, data, f"vocabulary/{rid}.yaml")
             for rid, data in kb.vocabulary.items()}
    return Extractor(vocab)
