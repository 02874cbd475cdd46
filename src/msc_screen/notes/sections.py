"""Section headings in clinical notes ("PAST MEDICAL HISTORY:", "Family History", MTSamples'
",ALLERGIES: ,") and the assertion flags a mention inherits from its section (a disease listed
under Family History is a relative's). Heading list: ``sections.yaml``."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ..errors import KnowledgeError
from ..knowledge.loader import load_yaml
from .triggers import CATEGORIES

SECTIONS_FILE = "sections.yaml"


@dataclass(frozen=True, slots=True)
class Heading:
    start: int  # where the heading text begins
    content: int  # where the section's text begins (after the colon)
    name: str | None  # canonical section name; None for an unnamed section
    flags: frozenset[str]
    negated_flags: frozenset[str] = frozenset()  # added only to a negated mention


@dataclass(frozen=True, slots=True)
class SectionMap:
    """Canonical sections by alias, and the compiled heading finder."""

    by_alias: dict[str, tuple[str, frozenset[str], frozenset[str]]]
    regex: re.Pattern[str]
    spaced: re.Pattern[str]  # a heading after a run of spaces (a flattened line break)

    def find(self, text: str) -> list[Heading]:
        out: list[Heading] = []
        # A leading newline lets a heading at offset 0 match like one after a separator.
        def begin(m: re.Match[str]) -> int:
            return m.start("h") if m.group("h") else m.start("b")

        matches = list(self.regex.finditer("\n" + text))
        if "  " in text:  # its own regex: a literal prefix keeps the common scan fast
            seen = {begin(m) for m in matches}
            matches += [m for m in self.spaced.finditer("\n" + text) if begin(m) not in seen]
            matches.sort(key=begin)
        for m in matches:
            raw = m.group("h") or m.group("b")
            if len(raw) > 60 or not raw[-1].isalpha():
                continue
            if m.group("b") and m.group(0)[0] not in "\r\n":
                continue  # a colon-less heading must stand alone on its line
            key = _norm(raw)
            hit = self.by_alias.get(key)
            if m.re is self.spaced and raw.upper() != raw and (hit is None or not raw[0].isupper()):
                continue  # after a run of spaces: a heading in capitals, or a known one
            neg: frozenset[str] = frozenset()
            if hit is not None:
                name, flags, neg = hit
            elif m.group("h") and raw.upper() == raw and sum(c.isalpha() for c in raw) >= 2:
                if " " not in raw.strip() and len(raw.strip()) <= 8:
                    continue  # "HEENT:", "NECK:" - a sub-heading inside the current section
                name, flags = key, frozenset()
            else:
                continue
            start = begin(m) - 1
            out.append(Heading(start, m.end() - 1, name, flags, neg))
        return out


_POSSESSIVE = re.compile(r"(?:his|her|their|the patient's|patient's) ")


def _norm(s: str) -> str:
    """Canonical heading key: lower case, single spaces, "&" as "and", no leading possessive
    ("HIS SOCIAL HISTORY" is "social history")."""
    key = " ".join(s.lower().replace("&", " and ").split())
    m = _POSSESSIVE.match(key)
    return key[m.end():] if m and m.end() < len(key) else key


def compile_sections(data: Any) -> SectionMap:
    where = f"knowledge/notes/{SECTIONS_FILE}"
    if not isinstance(data, dict) or not isinstance(data.get("sections"), list):
        raise KnowledgeError(where, "expected a mapping with a 'sections' list")
    by_alias: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {}
    for i, s in enumerate(data["sections"]):
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            raise KnowledgeError(where, f"sections[{i}]: needs a 'name'")
        flags = s.get("flags") or []
        neg_flags = s.get("negated_flags") or []
        bad = [f for f in (*flags, *neg_flags) if f not in CATEGORIES]
        if bad:
            raise KnowledgeError(where, f"sections[{i}] ({s['name']}): unknown flag(s) {bad}")
        aliases = s.get("aliases") or []
        if not aliases or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise KnowledgeError(where, f"sections[{i}] ({s['name']}): 'aliases' must be a "
                                 "non-empty list of strings")
        for a in aliases:
            key = _norm(a)
            if key in by_alias:
                raise KnowledgeError(where, f"sections[{i}] ({s['name']}): alias {a!r} is "
                                     f"already used by {by_alias[key][0]!r}")
            by_alias[key] = (s["name"], frozenset(flags), frozenset(neg_flags))
    # (h) "HEADING:" at a line start, after MTSamples' ",", "." or ";" separators, or - in
    # capitals only - after a run of spaces (text whose line breaks were flattened:
    # "0111 HOURS    CLINICAL HISTORY:  Rule out pneumonia"); "DIAGNOSIS(ES):" too;
    # (b) a known heading alone on its line, without a colon. After a run of spaces, the
    # heading has single spaces between its words (a run stands for a line break).
    regex = re.compile(
        r"[\n\r,.;][ \t]*(?:(?P<h>[A-Za-z][A-Za-z /&'\-]{0,58}[A-Za-z])"
        r"(?:\((?:es|ES|s|S)\))?[ \t]*:"
        r"|(?P<b>[A-Za-z][A-Za-z /&'\-]{0,58}[A-Za-z])[ \t]*(?=\r?\n))")
    spaced = re.compile(
        r"  [ \t]*+(?=[A-Z])(?P<h>[A-Za-z][A-Za-z/&'\-]*+(?:[ \t][A-Za-z/&'\-]++){0,8}+)"
        r"(?:\((?:es|ES|s|S)\))?[ \t]*:(?P<b>)")
    return SectionMap(by_alias, regex, spaced)


@lru_cache(maxsize=1)
def default_sections() -> SectionMap:
    # in the knowledge base: they change findings, so the ruleset's sha256 covers them
    raw = (resources.files("msc_screen") / "knowledge" / "notes" / SECTIONS_FILE).read_bytes()
    try:
        data = load_yaml(raw)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"knowledge/notes/{SECTIONS_FILE}", f"not valid YAML: {exc}"
                             ) from None
    return compile_sections(data)


class SectionIndex:
    """The section in force at any offset of one note."""

    __slots__ = ("_headings", "_starts")

    def __init__(self, headings: list[Heading]) -> None:
        self._headings = headings
        self._starts = [h.content for h in headings]

    @property
    def headings(self) -> list[Heading]:
        return self._headings

    def at(self, pos: int) -> Heading | None:
        i = bisect.bisect_right(self._starts, pos) - 1
        return self._headings[i] if i >= 0 else None
