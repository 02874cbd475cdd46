"""Compiled value sets: membership tests on (system key, code) with ICD-10-CM hierarchy.

ICD-10-CM ranges and categories match by prefix and category order rather than by expanding
thousands of codes at start-up; the linter expands them against the official table instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..model import Coding
from .systems import CANONICAL_URI, ICD10, ICD10CM, normalise_code

KNOWN_KEYS = frozenset(CANONICAL_URI)

_ICD_KEYS = (ICD10CM, ICD10)


@dataclass(slots=True)
class _Part:
    exact: set[tuple[str, str]] = field(default_factory=set)
    icd_prefixes: set[str] = field(default_factory=set)
    icd_ranges: list[tuple[str, str]] = field(default_factory=list)

    def add(self, system: str, codes: Iterable[str], ranges: Iterable[str]) -> None:
        for c in codes:
            if system in _ICD_KEYS:
                self.icd_prefixes.add(normalise_code(system, c))
            else:
                self.exact.add((system, normalise_code(system, c)))
        for r in ranges:
            if system not in _ICD_KEYS:
                raise ValueError(f"ranges are only defined for ICD-10-CM, not {system!r}")
            lo, sep, hi = r.partition("-")
            if sep:
                self.icd_ranges.append(
                    (normalise_code(system, lo)[:3], normalise_code(system, hi)[:3])
                )
            else:
                self.icd_prefixes.add(normalise_code(system, r))

    def contains(self, key: str | None, code: str) -> bool:
        if key in _ICD_KEYS:
            c = normalise_code(key, code)
            for n in range(3, len(c) + 1):
                if c[:n] in self.icd_prefixes:
                    return True
            cat = c[:3]
            return any(lo <= cat <= hi for lo, hi in self.icd_ranges)
        return key is not None and (key, normalise_code(key, code)) in self.exact


class CompiledValueSet:
    """Membership over codings, plus optional free-text patterns for uncoded records."""

    __slots__ = ("_exclude", "_include", "_ingredients", "_memo", "_names", "_text", "id",
                 "title")

    def __init__(self, vid: str, title: str) -> None:
        self.id = vid
        self.title = title
        self._include = _Part()
        self._exclude = _Part()
        self._text: re.Pattern[str] | None = None
        self._ingredients: re.Pattern[str] | None = None
        self._memo: dict[tuple[str | None, str], bool] = {}
        self._names: dict[str, str | None] = {}

    def include(self, system: str, codes: Iterable[str], ranges: Iterable[str] = ()) -> None:
        self._include.add(system, codes, ranges)

    def exclude(self, system: str, codes: Iterable[str], ranges: Iterable[str] = ()) -> None:
        self._exclude.add(system, codes, ranges)

    def set_text_patterns(self, patterns: Iterable[str]) -> None:
        pats = [re.escape(p.lower()) for p in patterns]
        self._text = (re.compile(r"\b(?:" + "|".join(pats) + r")\b", re.IGNORECASE)
                      if pats else None)

    def text_span(self, text: str) -> tuple[int, int] | None:
        """Where one of the set's text patterns occurs in ``text`` (whole words, any case)."""
        if self._text is None:
            return None
        m = self._text.search(text)
        return m.span() if m else None

    def set_ingredients(self, names: Iterable[str]) -> None:
        pats = [r"\s+".join(re.escape(w) for w in n.lower().split()) for n in names if n.strip()]
        self._ingredients = (re.compile(r"(?<!\w)(?:" + "|".join(pats) + r")(?!\w)")
                             if pats else None)

    def ingredient_in(self, text: str) -> str | None:
        """The ingredient name ``text`` (a drug display or text) contains, else None."""
        if self._ingredients is None:
            return None
        hit = self._names.get(text, "")
        if hit == "":
            m = self._ingredients.search(text.lower())
            hit = m.group(0) if m else None
            if len(self._names) < 100_000:
                self._names[text] = hit
        return hit

    def has_ingredients(self) -> bool:
        return self._ingredients is not None

    def contains(self, key: str | None, code: str) -> bool:
        k = (key, code)
        hit = self._memo.get(k)
        if hit is None:
            hit = self._include.contains(key, code) and not self._exclude.contains(key, code)
            if len(self._memo) < 200_000:
                self._memo[k] = hit
        return hit

    def match(self, codings: Iterable[Coding], text: str | None = None) -> Coding | None:
        """The first coding in the set, else None. Free-text patterns apply only to records
        with no coding in a known code system: a coded record is judged by its codes (the
        text of "History of myocardial infarction" must not match "myocardial infarction")."""
        coded = False
        for c in codings:
            if self.contains(c.system, c.code):
                return c
            coded = coded or c.system in KNOWN_KEYS
        if text and not coded and self._text is not None and self._text.search(text):
            return Coding(None, text, text)
        return None

    def has_text_patterns(self) -> bool:
        return self._text is not None


class CodeFilter:
    """Could a coding belong to any of a record kind's value sets? The reader converts only
    records some rule can read: a record whose known codes are in none of them cannot change a
    finding (hierarchies and ranges included, unlike a bare code set). Memoised per coding."""

    __slots__ = ("_memo", "decided", "valuesets")

    def __init__(self, valuesets: Iterable[CompiledValueSet]) -> None:
        self.valuesets = tuple(valuesets)
        self._memo: dict[tuple[str | None, str], bool] = {}
        # the reader's whole keep-or-skip decision per single-coding concept as recorded
        # (fhir/record.py ``_wanted``): most records repeat a few hundred concepts
        self.decided: dict[tuple[object, ...], bool] = {}

    def wants(self, key: str | None, code: str) -> bool:
        k = (key, code)
        hit = self._memo.get(k)
        if hit is None:
            hit = any(v.contains(key, code) for v in self.valuesets)
            if len(self._memo) < 200_000:
                self._memo[k] = hit
        return hit
