"""Assertion context (the ConText / NegEx algorithm): is a target phrase in a sentence negated,
historical, a relative's, hypothetical or uncertain?

A trigger's scope runs forward or backward from it, within the sentence, up to a token limit,
and stops at a terminator for its category ("but", "however", "presents with"...) or a clause
break (";"). Pseudo-triggers ("no increase", "gram negative", "history of present illness")
match longer than the trigger inside them and so neutralise it. Section headings add their
default flags (Family History -> family; Past Medical History -> historical)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from .triggers import CATEGORIES, Entry, TriggerSet

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Assertion:
    negated: bool = False
    historical: bool = False
    family: bool = False
    hypothetical: bool = False
    uncertain: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {c: getattr(self, c) for c in CATEGORIES}


class ScannedSentence:
    """One sentence's trigger matches and word offsets, computed once and shared by every
    target in it."""

    __slots__ = ("ends", "text", "tokens", "triggers")

    def __init__(self, text: str, rules: TriggerSet) -> None:
        self.text = text
        entries = rules.entries
        trig: list[tuple[int, int, Entry]] = []
        ends: list[tuple[int, int, frozenset[str]]] = []
        for m in rules.regex.finditer(text):
            e = entries[int(m.lastgroup[1:])]  # type: ignore[index]
            if e.actions:
                trig.append((m.start(), m.end(), e))
        for m in rules.ends_regex.finditer(text):
            e = entries[int(m.lastgroup[1:])]  # type: ignore[index]
            ends.append((m.start(), m.end(), e.ends))
        for ch in rules.clause_breaks:
            pos = text.find(ch)
            while pos >= 0:
                ends.append((pos, pos + 1, frozenset(CATEGORIES)))
                pos = text.find(ch, pos + 1)
        self.triggers = trig
        self.ends = ends
        self.tokens = [m.start() for m in _WORD.finditer(text)]

    def _ntok(self, a: int, b: int) -> int:
        return bisect.bisect_left(self.tokens, b) - bisect.bisect_left(self.tokens, a)

    def _terminated(self, cat: str, a: int, b: int) -> bool:
        return any(s >= a and e <= b and cat in cats for s, e, cats in self.ends)

    def assess(self, start: int, end: int, section_flags: frozenset[str] = frozenset()
               ) -> Assertion:
        """Flags for the target at [start, end) of this sentence."""
        found = set(section_flags)
        for s, e, entry in self.triggers:
            if s < end and e > start:
                continue  # the trigger overlaps the target itself
            for a in entry.actions:
                if a.category in found:
                    continue
                if a.direction == "forward" and e <= start:
                    gap = (e, start)
                elif a.direction == "backward" and s >= end:
                    gap = (end, s)
                else:
                    continue
                if a.max_tokens is not None and self._ntok(*gap) > a.max_tokens:
                    continue
                if self._terminated(a.category, *gap):
                    continue
                found.add(a.category)
        return Assertion(**{c: c in found for c in CATEGORIES})
