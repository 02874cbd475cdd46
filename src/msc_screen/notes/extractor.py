"""The notes extractor: rule-concept mentions with assertion context, in one linear pass per
note. Matching is compiled once (Aho-Corasick for terms, one regex each for abbreviations and
patterns); sentence, section and trigger work is done only around mentions."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

from ..model import Mention
from .context import Assertion, ScannedSentence
from .sections import SectionIndex, SectionMap, default_sections
from .sentences import Sentences
from .triggers import TriggerSet, default_rules
from .vocabulary import RuleVocabulary, load_vocabularies

SNIPPET_CHARS = 240
MAX_MENTIONS_PER_RULE = 5000  # per note: bounds time and output on pathological input
CANDIDATE_CAP = 4 * MAX_MENTIONS_PER_RULE  # raw matches kept per rule, in text order
PATTERN_WINDOW = 80  # characters either side of an anchor word searched by its pattern


def lower_same_length(text: str) -> str:
    """``text.lower()`` with offsets preserved (a few characters lower to two)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


@dataclass(frozen=True, slots=True)
class _Key:
    rule: str
    exclude: bool = False
    anchor: int = -1  # index of the pattern this word anchors, or -1


class Extractor:
    """Finds mentions of every rule's vocabulary and asserts their context."""

    def __init__(self, vocab: dict[str, RuleVocabulary], rules: TriggerSet | None = None,
                 sections: SectionMap | None = None) -> None:
        self.rules = rules or default_rules()
        self.sections = sections or default_sections()
        self.rule_ids = tuple(sorted(vocab))
        auto: ahocorasick.Automaton = ahocorasick.Automaton()
        table: dict[str, set[_Key]] = {}

        def put(term: str, key: _Key) -> None:
            t = " ".join(term.lower().split())
            table.setdefault(t, set()).add(key)

        abbrev = ahocorasick.Automaton()
        abbrev_keys: dict[str, set[str]] = {}
        # (rule, compiled pattern, anchored?) - an anchored pattern runs only near its anchors
        self._pats: list[tuple[str, re.Pattern[str], bool]] = []
        for rid in self.rule_ids:
            v = vocab[rid]
            for t in (*v.terms, *v.misspellings):
                put(t, _Key(rid))
                if v.plurals and t[-1:].isalpha() and not t.endswith("s"):
                    put(t + "s", _Key(rid))
            for t in v.exclude:
                put(t, _Key(rid, exclude=True))
            for a in v.abbreviations:
                abbrev_keys.setdefault(a.strip(), set()).add(rid)
            for pat in v.patterns:
                idx = len(self._pats)
                self._pats.append((rid, re.compile(pat.pattern), bool(pat.anchors)))
                for a in pat.anchors:
                    put(a, _Key(rid, anchor=idx))
        for t, keys in table.items():
            auto.add_word(t, (len(t), tuple(sorted(keys, key=lambda k: (k.rule, k.exclude,
                                                                      k.anchor)))))
        for a, rids in abbrev_keys.items():
            abbrev.add_word(a, (len(a), tuple(_Key(r, False) for r in sorted(rids))))
        auto.make_automaton()
        abbrev.make_automaton()
        self._auto = auto
        self._abbrev = abbrev
        self._has_terms = bool(table)
        self._has_abbrev = bool(abbrev_keys)
        # Patterns are written in lower case and run over the lower-cased note (IGNORECASE
        # matching is several times slower).

    # ------------------------------------------------------------------ matching
    def _candidates(self, text: str) -> tuple[dict[str, list[tuple[int, int]]],
                                              dict[str, list[tuple[int, int]]]]:
        found: dict[str, list[tuple[int, int]]] = {}
        excl: dict[str, list[tuple[int, int]]] = {}
        low = lower_same_length(text)
        n = len(low)
        sources = []
        if self._has_terms:
            sources.append(self._auto.iter(low))
        if self._has_abbrev:
            sources.append(self._abbrev.iter(text))
        windows: dict[int, list[tuple[int, int]]] = {}
        for it in sources:
            for end, (length, keys) in it:
                start = end - length + 1
                whole = not ((start > 0 and low[start - 1].isalnum() and low[start].isalnum())
                             or (end + 1 < n and low[end + 1].isalnum() and low[end].isalnum()))
                for k in keys:
                    if k.anchor >= 0:
                        windows.setdefault(k.anchor, []).append(
                            (max(0, start - PATTERN_WINDOW), min(n, end + 1 + PATTERN_WINDOW)))
                    elif whole:
                        lst = (excl if k.exclude else found).setdefault(k.rule, [])
                        if len(lst) < CANDIDATE_CAP:
                            lst.append((start, end + 1))
        for idx, (rid, rx, anchored) in enumerate(self._pats):
            spans = _merge(windows.get(idx, [])) if anchored else [(0, n)]
            for ws, we in spans:
                for m in rx.finditer(low, ws, we):
                    s, e = m.span()
                    if (s > 0 and low[s - 1].isalnum() and low[s].isalnum()) or (
                            e < n and e > s and low[e].isalnum() and low[e - 1].isalnum()):
                        continue
                    lst = found.setdefault(rid, [])
                    if len(lst) < CANDIDATE_CAP:
                        lst.append((s, e))
        return found, excl

    @staticmethod
    def _resolve(spans: list[tuple[int, int]], excl: list[tuple[int, int]]
                 ) -> list[tuple[int, int]]:
        """Leftmost-longest, non-overlapping; drop spans inside an exclusion phrase."""
        xs_sorted = sorted(excl)
        starts = [x[0] for x in xs_sorted]
        reach: list[int] = []  # furthest exclusion end among those starting at or before
        far = -1
        for _, xe in xs_sorted:
            far = max(far, xe)
            reach.append(far)
        out: list[tuple[int, int]] = []
        last = -1
        for s, e in sorted(set(spans), key=lambda x: (x[0], -x[1])):
            if s < last:
                continue
            i = bisect.bisect_right(starts, s)
            if i and reach[i - 1] >= e:
                continue
            out.append((s, e))
            last = e
        return out

    # ------------------------------------------------------------------ public
    def extract(self, text: str) -> list[Mention]:
        """Every mention in ``text``, ordered by position then rule (at most
        MAX_MENTIONS_PER_RULE per rule, the first ones)."""
        found, excl = self._candidates(text)
        if not found:
            return []
        headings = self.sections.find(text)
        index = SectionIndex(headings)
        sents = Sentences(text, headings)
        cache: dict[tuple[int, int], ScannedSentence] = {}
        out: list[Mention] = []
        for rid in sorted(found):
            spans = self._resolve(found[rid], excl.get(rid, []))
            for s, e in spans[:MAX_MENTIONS_PER_RULE]:
                ss, se = sents.around(s, e)
                sc = cache.get((ss, se))
                if sc is None:
                    sc = cache[(ss, se)] = ScannedSentence(text[ss:se], self.rules)
                h = index.at(e - 1)
                a = (sc.assess(s - ss, e - ss, h.flags, h.negated_flags) if h
                     else sc.assess(s - ss, e - ss))
                out.append(Mention(rule=rid, text=text[s:e], span=(s, e), negated=a.negated,
                                   historical=a.historical, family=a.family,
                                   hypothetical=a.hypothetical, uncertain=a.uncertain,
                                   section=h.name if h else None,
                                   snippet=_snippet(text, ss, se, s, e)))
        out.sort(key=lambda m: (m.span, m.rule))
        return out

    def assert_span(self, text: str, start: int, end: int) -> Assertion:
        """Context flags for the words at ``text[start:end]`` (a value set's text pattern found
        in a record's text: "no evidence of malignancy" is negated, "family history of" a
        relative's)."""
        headings = self.sections.find(text)
        sents = Sentences(text, headings)
        ss, se = sents.around(start, end)
        sc = ScannedSentence(text[ss:se], self.rules)
        h = SectionIndex(headings).at(end - 1)
        if h is None:
            return sc.assess(start - ss, end - ss)
        return sc.assess(start - ss, end - ss, h.flags, h.negated_flags)

    def assert_target(self, text: str, target: str) -> Assertion:
        """Context flags for ``target`` (any phrase) where it first occurs in ``text``."""
        span = locate(text, target)
        headings = self.sections.find(text)
        if span is None:
            return Assertion()
        sents = Sentences(text, headings)
        ss, se = sents.around(*span)
        # the section in force where the target ends ("ALLERGIES: penicillin" as one target);
        # a target that is itself a heading's label ("ALCOHOL: two glasses a day") is that
        # section's subject
        h = SectionIndex(headings).at(span[1] - 1)
        label = next((g for g in headings if g.start <= span[0] < g.content), None)
        if label is not None and (h is None or h.content <= label.start):
            h = label
        sc = ScannedSentence(text[ss:se], self.rules)
        if h is None:
            return sc.assess(span[0] - ss, span[1] - ss)
        return sc.assess(span[0] - ss, span[1] - ss, h.flags, h.negated_flags)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _snippet(text: str, ss: int, se: int, s: int, e: int) -> str:
    """The sentence around a mention, whitespace collapsed, at most SNIPPET_CHARS around it,
    with the mention marked «like this» so a reader sees which words counted."""
    if se - ss > SNIPPET_CHARS:
        half = max(0, (SNIPPET_CHARS - (e - s)) // 2)
        ss, se = max(ss, s - half), min(se, e + half)
    return " ".join(f"{text[ss:s]}«{text[s:e]}»{text[e:se]}".split()).strip(" ,;:")


def locate(text: str, target: str) -> tuple[int, int] | None:
    """Where ``target`` occurs in ``text``: as whole words (ignoring case), anywhere, with any
    whitespace/punctuation between its words, then its longest word, then a word sharing its
    stem. Of several whole-word occurrences, one written in capitals in mixed-case text (how
    annotated corpora such as the NegEx test set mark the target) is preferred, then one that
    is not a section label ("ALLERGIES:"), then the first."""
    t = target.strip()
    if not t:
        return None
    low = lower_same_length(text)
    tl = t.lower()
    found: list[tuple[int, int]] = []
    i = low.find(tl)
    while i >= 0 and len(found) < 64:  # whole words only: "MI" is not in "faMIly"
        if (i == 0 or not (low[i - 1].isalnum() and tl[0].isalnum())) and (
                i + len(t) >= len(low) or not (low[i + len(t)].isalnum() and tl[-1].isalnum())):
            found.append((i, i + len(t)))
        i = low.find(tl, i + 1)
    if found:
        return _pick(text, found)
    words = re.findall(r"\w+", t)
    if not words:
        return None
    rx = re.compile(r"(?<!\w)" + r"\W+".join(re.escape(w) for w in words) + r"(?!\w)",
                    re.IGNORECASE)
    found = [m.span() for _, m in zip(range(64), rx.finditer(text), strict=False)]
    if found:
        return _pick(text, found)
    i = low.find(tl)
    if i >= 0:
        return i, i + len(t)
    for w in sorted(words, key=len, reverse=True):
        m = re.search(r"(?<!\w)" + re.escape(w) + r"(?!\w)", text, re.IGNORECASE)
        if m and len(w) >= 3:
            return m.span()
    for w in sorted(words, key=len, reverse=True):  # an inflection: "tenderness" ~ "tender"
        if len(w) >= 5:
            m = re.search(r"(?<!\w)" + re.escape(w[:max(4, len(w) - 4)]) + r"\w*", text,
                          re.IGNORECASE)
            if m:
                return m.span()
    return None


_LABEL = re.compile(r"[ \t]*\)?[ \t]*:")


def _pick(text: str, spans: list[tuple[int, int]]) -> tuple[int, int]:
    """The occurrence a reader would mean: capitals in mixed-case text, else not a label."""
    if len(spans) == 1:
        return spans[0]
    mixed = any(c.islower() for c in text)

    def rank(sp: tuple[int, int]) -> tuple[int, int]:
        s, e = sp  # the whole word is capitalised: "PE," is marked, "PE's" is not
        while s > 0 and (text[s - 1].isalnum() or text[s - 1] == "'"):
            s -= 1
        while e < len(text) and (text[e].isalnum() or text[e] == "'"):
            e += 1
        frag = text[s:e]
        marked = mixed and frag.upper() == frag and any(c.isalpha() for c in frag)
        label = _LABEL.match(text, sp[1]) is not None
        return (0 if marked else 1, 1 if label else 0)

    return min(spans, key=lambda sp: (rank(sp), sp[0]))


def build_extractor(vocab: Iterable[RuleVocabulary] | None = None) -> Extractor:
    vs = {v.rule: v for v in vocab} if vocab is not None else load_vocabularies()
    return Extractor(vs)
