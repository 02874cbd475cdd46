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

from .triggers import CATEGORIES, TRIGGER_CATEGORIES, VETOES, Entry, TriggerSet

_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")


def _collapse(text: str) -> tuple[str, list[int]]:
    """Whitespace runs as one space, with each character's offset in ``text`` (plus the end)."""
    if "  " not in text and "\n" not in text and "\t" not in text and "\r" not in text:
        return text, list(range(len(text) + 1))
    parts: list[str] = []
    offs: list[int] = []
    pos = 0
    for m in _SPACES.finditer(text):
        parts.append(text[pos:m.start()])
        offs.extend(range(pos, m.start()))
        parts.append(" ")
        offs.append(m.start())
        pos = m.end()
    parts.append(text[pos:])
    offs.extend(range(pos, len(text) + 1))
    return "".join(parts), offs


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

    __slots__ = ("_by_end", "_by_start", "ends", "shadowed", "text", "tokens", "triggers")

    def __init__(self, text: str, rules: TriggerSet) -> None:
        self.text = text
        entries = rules.entries
        norm, offs = _collapse(text.lower() if len(text.lower()) == len(text) else text)
        cands: list[tuple[int, int, int]] = []
        ends: list[tuple[int, int, frozenset[str]]] = []
        n = len(norm)
        for last, (idx, length, b0, b1) in rules.automaton.iter(norm):
            s, e = last - length + 1, last + 1
            if (b0 and s > 0 and norm[s - 1].isalnum()) or (b1 and e < n and norm[e].isalnum()):
                continue
            entry = entries[idx]
            if entry.actions or entry.pseudo:
                cands.append((s, e, idx))
            if entry.ends:
                ends.append((offs[s], offs[e], entry.ends))
        if rules.pattern_regex is not None:
            for m in rules.pattern_regex.finditer(norm):
                cands.append((m.start(), m.end(), int(m.lastgroup[1:])))  # type: ignore[index]
        if rules.ends_regex is not None:
            for m in rules.ends_regex.finditer(norm):
                ends.append((offs[m.start()], offs[m.end()],
                             entries[int(m.lastgroup[1:])].ends))  # type: ignore[index]
        # Leftmost-longest, non-overlapping: a pseudo-trigger hides the trigger inside it.
        # Two entries on exactly the same words (a phrase and a pattern) both act.
        # A trigger hidden by a longer phrase is kept aside with that phrase's span: where the
        # phrase overlaps the target it is part of the target's words, not context ("no
        # change in vision" - "change in vision" is the target, so "no" negates it).
        trig: list[tuple[int, int, Entry]] = []
        shadowed: list[tuple[int, int, Entry, int, int]] = []
        edge, last = -1, (-1, -1)
        for s, e, idx in sorted(cands, key=lambda c: (c[0], -c[1])):
            if s < edge and (s, e) != last:
                if entries[idx].actions:
                    shadowed.append((offs[s], offs[e], entries[idx], offs[last[0]],
                                     offs[last[1]]))
                continue
            edge, last = e, (s, e)
            if entries[idx].actions:
                trig.append((offs[s], offs[e], entries[idx]))
        for ch in rules.clause_breaks:
            pos = text.find(ch)
            while pos >= 0:
                ends.append((pos, pos + 1, frozenset(TRIGGER_CATEGORIES)))
                pos = text.find(ch, pos + 1)
        self.triggers = trig
        self.shadowed = shadowed
        self.ends = ends
        self.tokens = [m.start() for m in _WORD.finditer(text)]
        # Per category, terminators indexed so "is there one inside [a, b]?" is two bisects:
        # by end (with the running max of starts) and by start (with the min of ends after).
        self._by_end: dict[str, tuple[list[int], list[int]]] = {}
        self._by_start: dict[str, tuple[list[int], list[int]]] = {}
        for cat in TRIGGER_CATEGORIES:
            spans = [(a, b) for a, b, cats in ends if cat in cats]
            spans.sort(key=lambda x: x[1])
            ends_at, max_start, run = [], [], -1
            for a, b in spans:
                run = max(run, a)
                ends_at.append(b)
                max_start.append(run)
            self._by_end[cat] = (ends_at, max_start)
            spans.sort()
            starts_at = [a for a, _ in spans]
            min_end = [0] * len(spans)
            low = 1 << 62
            for i in range(len(spans) - 1, -1, -1):
                low = min(low, spans[i][1])
                min_end[i] = low
            self._by_start[cat] = (starts_at, min_end)

    def _ntok(self, a: int, b: int) -> int:
        return bisect.bisect_left(self.tokens, b) - bisect.bisect_left(self.tokens, a)

    def _latest_end_start(self, cat: str, pos: int) -> int:
        """The largest start of a terminator for ``cat`` that ends at or before ``pos``."""
        ends_at, max_start = self._by_end[cat]
        i = bisect.bisect_right(ends_at, pos)
        return max_start[i - 1] if i else -1

    def _earliest_start_end(self, cat: str, pos: int) -> int:
        """The smallest end of a terminator for ``cat`` that starts at or after ``pos``."""
        starts_at, min_end = self._by_start[cat]
        i = bisect.bisect_left(starts_at, pos)
        return min_end[i] if i < len(starts_at) else 1 << 62

    def assess(self, start: int, end: int, section_flags: frozenset[str] = frozenset(),
               negated_flags: frozenset[str] = frozenset()) -> Assertion:
        """Flags for the target at [start, end) of this sentence; ``negated_flags`` are the
        section's flags for a negated mention ("SOCIAL HISTORY: denies tobacco" - a denied
        habit covers the patient's history)."""
        found = set(section_flags)
        fwd_stop: dict[str, int] = {}
        bwd_stop: dict[str, int] = {}
        triggers = self.triggers
        if self.shadowed:
            revived = [(s, e, en) for s, e, en, hs, he in self.shadowed
                       if hs < end and he > start]
            if revived:
                triggers = triggers + revived
        for s, e, entry in triggers:
            if s < end and e > start:
                continue  # the trigger overlaps the target itself
            for a in entry.actions:
                cat = a.category
                if cat in found:
                    continue
                if a.direction == "forward" and e <= start:
                    if cat not in fwd_stop:
                        fwd_stop[cat] = self._latest_end_start(cat, start)
                    if fwd_stop[cat] >= e:
                        continue  # a terminator lies between trigger and target
                    gap = (e, start)
                elif a.direction == "backward" and s >= end:
                    if cat not in bwd_stop:
                        bwd_stop[cat] = self._earliest_start_end(cat, end)
                    if bwd_stop[cat] <= s:
                        continue
                    gap = (end, s)
                else:
                    continue
                if a.max_tokens is not None and self._ntok(*gap) > a.max_tokens:
                    continue
                found.add(cat)
        if "negated" in found:
            found |= negated_flags
        for veto, flag in VETOES.items():
            if veto in found:
                found.discard(flag)
        return Assertion(**{c: c in found for c in CATEGORIES})
