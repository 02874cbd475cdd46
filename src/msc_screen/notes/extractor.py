"""The notes extractor: rule-concept mentions with assertion context, in one linear pass per
note. Matching is compiled once (Aho-Corasick for terms, one regex each for abbreviations and
patterns); sentence, section and trigger work is done only around mentions."""

from __future__ import annotations

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
_WS = re.compile(r"\s+")
_B0, _B1 = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"


def lower_same_length(text: str) -> str:
    """``text.lower()`` with offsets preserved (a few characters lower to two)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


@dataclass(frozen=True, slots=True)
class _Key:
    rule: str
    exclude: bool


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

        abbrevs: dict[str, list[str]] = {}
        pats: list[str] = []
        self._group_rule: dict[str, str] = {}
        for rid in self.rule_ids:
            v = vocab[rid]
            for t in (*v.terms, *v.misspellings):
                put(t, _Key(rid, False))
                if v.plurals and t[-1:].isalpha() and not t.endswith("s"):
                    put(t + "s", _Key(rid, False))
            for t in v.exclude:
                put(t, _Key(rid, True))
            if v.abbreviations:
                abbrevs[rid] = v.abbreviations
            if v.patterns:
                g = f"r{len(self._group_rule)}"
                self._group_rule[g] = rid
                pats.append(f"(?P<{g}>{_B0}(?:{'|'.join(v.patterns)}){_B1})")
        for t, keys in table.items():
            auto.add_word(t, (len(t), tuple(sorted(keys, key=lambda k: (k.rule, k.exclude)))))
        auto.make_automaton()
        self._auto = auto
        self._has_terms = bool(table)
        self._abbrev = [(rid, re.compile(
            _B0 + "(?:" + "|".join(re.escape(a) for a in sorted(ab, key=len, reverse=True))
            + ")" + _B1)) for rid, ab in abbrevs.items()]
        self._patterns = re.compile("|".join(pats), re.IGNORECASE) if pats else None

    # ------------------------------------------------------------------ matching
    def _candidates(self, text: str) -> tuple[dict[str, list[tuple[int, int]]],
                                              dict[str, list[tuple[int, int]]]]:
        found: dict[str, list[tuple[int, int]]] = {}
        excl: dict[str, list[tuple[int, int]]] = {}
        if self._has_terms:
            low = lower_same_length(text)
            n = len(low)
            for end, (length, keys) in self._auto.iter(low):
                start = end - length + 1
                if start > 0 and low[start - 1].isalnum() and low[start].isalnum():
                    continue
                if end + 1 < n and low[end + 1].isalnum() and low[end].isalnum():
                    continue
                for k in keys:
                    (excl if k.exclude else found).setdefault(k.rule, []).append(
                        (start, end + 1))
        for rid, rx in self._abbrev:
            for m in rx.finditer(text):
                found.setdefault(rid, []).append(m.span())
        if self._patterns is not None:
            for m in self._patterns.finditer(text):
                found.setdefault(self._group_rule[m.lastgroup or ""], []).append(m.span())
        return found, excl

    @staticmethod
    def _resolve(spans: list[tuple[int, int]], excl: list[tuple[int, int]]
                 ) -> list[tuple[int, int]]:
        """Leftmost-longest, non-overlapping; drop spans inside an exclusion phrase."""
        out: list[tuple[int, int]] = []
        last = -1
        for s, e in sorted(set(spans), key=lambda x: (x[0], -x[1])):
            if s < last:
                continue
            if any(xs <= s and e <= xe for xs, xe in excl):
                continue
            out.append((s, e))
            last = e
        return out

    # ------------------------------------------------------------------ public
    def extract(self, text: str) -> list[Mention]:
        """Every mention in ``text``, ordered by position then rule."""
        found, excl = self._candidates(text)
        if not found:
            return []
        headings = self.sections.find(text)
        index = SectionIndex(headings)
        sents = Sentences(text, headings)
        cache: dict[tuple[int, int], ScannedSentence] = {}
        out: list[Mention] = []
        for rid in sorted(found):
            for s, e in self._resolve(found[rid], excl.get(rid, [])):
                ss, se = sents.around(s, e)
                sc = cache.get((ss, se))
                if sc is None:
                    sc = cache[(ss, se)] = ScannedSentence(text[ss:se], self.rules)
                h = index.at(s)
                a = sc.assess(s - ss, e - ss, h.flags if h else frozenset())
                out.append(Mention(rule=rid, text=text[s:e], span=(s, e), negated=a.negated,
                                   historical=a.historical, family=a.family,
                                   hypothetical=a.hypothetical, uncertain=a.uncertain,
                                   section=h.name if h else None,
                                   snippet=_snippet(text, ss, se, s, e)))
        out.sort(key=lambda m: (m.span, m.rule))
        return out

    def assert_target(self, text: str, target: str) -> Assertion:
        """Context flags for ``target`` (any phrase) where it first occurs in ``text``."""
        span = locate(text, target)
        headings = self.sections.find(text)
        if span is None:
            return Assertion()
        sents = Sentences(text, headings)
        ss, se = sents.around(*span)
        h = SectionIndex(headings).at(span[0])
        sc = ScannedSentence(text[ss:se], self.rules)
        return sc.assess(span[0] - ss, span[1] - ss, h.flags if h else frozenset())


def _snippet(text: str, ss: int, se: int, s: int, e: int) -> str:
    if se - ss > SNIPPET_CHARS:
        half = max(0, (SNIPPET_CHARS - (e - s)) // 2)
        ss, se = max(ss, s - half), min(se, e + half)
    return _WS.sub(" ", text[ss:se]).strip(" ,;:")


def locate(text: str, target: str) -> tuple[int, int] | None:
    """Where ``target`` first occurs in ``text``: exactly (ignoring case), then with any
    whitespace/punctuation between its words, then its longest word."""
    t = target.strip()
    if not t:
        return None
    low = lower_same_length(text)
    tl = t.lower()
    i = low.find(tl)
    while i >= 0:  # prefer a whole-word occurrence ("MI" is not in "faMIly")
        if (i == 0 or not (low[i - 1].isalnum() and tl[0].isalnum())) and (
                i + len(t) >= len(low) or not (low[i + len(t)].isalnum() and tl[-1].isalnum())):
            return i, i + len(t)
        i = low.find(tl, i + 1)
    words = re.findall(r"\w+", t)
    if not words:
        return None
    m = re.search(r"(?<!\w)" + r"\W+".join(re.escape(w) for w in words) + r"(?!\w)", text,
                  re.IGNORECASE)
    if m:
        return m.span()
    i = low.find(tl)
    if i >= 0:
        return i, i + len(t)
    for w in sorted(words, key=len, reverse=True):
        m = re.search(r"(?<!\w)" + re.escape(w) + r"(?!\w)", text, re.IGNORECASE)
        if m and len(w) >= 3:
            return m.span()
    return None


def build_extractor(vocab: Iterable[RuleVocabulary] | None = None) -> Extractor:
    vs = {v.rule: v for v in vocab} if vocab is not None else load_vocabularies()
    return Extractor(vs)
