"""Sentence boundaries for clinical text: full stops that are not abbreviations ("Dr.", "q.d.",
"a.m.", "e.g."), decimals, blank lines and list-like line breaks, numbered lists ("1. ", "2) "),
and section headings. One linear pass over the note; over-long sentences are cut into bounded
chunks so the work per mention stays bounded on pathological input (a 1 MB line)."""

from __future__ import annotations

import bisect
import re

from .sections import Heading

MAX_SENTENCE = 1000  # characters; longer runs are cut at a space near this length

ABBREVIATIONS = frozenset(["dr", "mr", "mrs", "ms", "prof", "st", "vs", "etc", "approx", "appt", "dept", "fig", "no", "nos", "inc", "jr", "sr", "pt", "pts", "yo", "yrs", "hrs", "mos", "wks", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun", "ca", "cf", "al", "est", "temp", "resp", "min", "max", "mm", "cm", "ml", "mg", "mcg", "kg", "lb", "lbs", "oz", "ft", "sq", "wt", "ht", "bp", "hr", "rr", "dx", "hx", "tx", "rx", "sx", "fx"])

# Every branch starts with a character class, so the regex engine can skip ahead quickly.
_BOUNDARY = re.compile(
    r"(?P<blank>\n[ \t]*[\r\n])"
    r"|(?P<nl>[\r\n](?=[ \t]*(?:[A-Z0-9\-*•#]|[\r\n]|$)))"
    r"|(?P<stop>[.!?]+(?=[\"')\]]*(?:\s+[\"'(\[]?[A-Z0-9•*\-]|\s*$|,+\s*[A-Z0-9])))"
    r"|(?P<list>[\s,;:](?=\(?\d{1,2}[.)]\s+[A-Za-z]))"
)
_PREV_WORD = re.compile(r"([A-Za-z.]+)$")
_LIST_NUMBER = re.compile(r"(?:^|[\s,;:(])\d{1,2}$")


def _is_abbreviation(text: str, dot: int) -> bool:
    if _LIST_NUMBER.search(text, max(0, dot - 4), dot):
        return True  # "1. " numbers a list item; the item is the sentence
    m = _PREV_WORD.search(text, max(0, dot - 20), dot)
    if m is None:
        return False
    word = m.group(1)
    if "." in word.strip("."):
        return True  # q.d, a.m, e.g, p.o - dotted abbreviations
    w = word.lower()
    return (len(w) == 1 and w.isalpha() and word.isupper()) or w in ABBREVIATIONS


def boundaries(text: str, headings: list[Heading]) -> list[int]:
    """Sorted offsets where a sentence may start (always includes 0 and len(text))."""
    cuts = [0, len(text)]
    for m in _BOUNDARY.finditer(text):
        kind = m.lastgroup
        if kind == "stop":
            if text[m.start()] == "." and m.end() - m.start() == 1 and _is_abbreviation(
                    text, m.start()):
                continue
            cuts.append(m.end())
        else:
            cuts.append(m.end())
    for h in headings:
        cuts.append(h.start)
        cuts.append(h.content)
    cuts.sort()
    return cuts


class Sentences:
    """Find the sentence (or bounded chunk) around an offset."""

    __slots__ = ("_cuts", "_text")

    def __init__(self, text: str, headings: list[Heading]) -> None:
        self._text = text
        self._cuts = boundaries(text, headings)

    def around(self, start: int, end: int) -> tuple[int, int]:
        cuts = self._cuts
        i = bisect.bisect_right(cuts, start) - 1
        s = cuts[i] if i >= 0 else 0
        j = bisect.bisect_left(cuts, end)
        e = cuts[j] if j < len(cuts) else len(self._text)
        if e - s > MAX_SENTENCE:
            s, e = self._chunk(s, e, start, end)
        return s, e

    def _chunk(self, s: int, e: int, start: int, end: int) -> tuple[int, int]:
        # Fixed chunk grid (so mentions in one chunk share it), snapped to a space.
        text = self._text
        k = (start - s) // MAX_SENTENCE
        cs = s + k * MAX_SENTENCE
        ce = min(e, cs + MAX_SENTENCE)
        if cs > s:
            sp = text.rfind(" ", cs - 100, cs)
            cs = sp + 1 if sp >= 0 and sp < start else cs
        if ce < e:
            sp = text.find(" ", ce, ce + 100)
            ce = sp if sp >= 0 else ce
        if ce < end:
            ce = min(e, end + 200)
        return min(cs, start), max(ce, end)
