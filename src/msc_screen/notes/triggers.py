"""Load the assertion-context trigger rules (``context_rules.yaml``) and compile them once into a
single regular expression, so a sentence is scanned for every trigger in one pass.

Errors name the data file and the offending group/term: a bad trigger file must say where."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from ..errors import KnowledgeError
from ..knowledge.loader import load_yaml

CATEGORIES = ("negated", "historical", "family", "hypothetical", "uncertain")
# Internal categories: they set no flag but veto one ("for 2 days" right after a condition
# makes it current, whatever "history of" said before it).
VETOES = {"current": "historical"}
TRIGGER_CATEGORIES = (*CATEGORIES, *VETOES)
DIRECTIONS = ("forward", "backward", "bidirectional")
RULES_FILE = "context_rules.yaml"


@dataclass(frozen=True, slots=True)
class Action:
    """What a matched trigger does: set ``category`` on targets in its scope."""

    category: str
    direction: str
    max_tokens: int | None


@dataclass(frozen=True, slots=True)
class Entry:
    """One distinct phrase or pattern and everything it does (trigger actions, pseudo, ends)."""

    source: str
    actions: tuple[Action, ...]
    pseudo: bool
    ends: frozenset[str]  # categories whose scope this phrase terminates


@dataclass(frozen=True, slots=True)
class TriggerSet:
    """Compiled triggers: literal phrases in an Aho-Corasick automaton over the lower-cased,
    whitespace-collapsed sentence (value: entry index, length, needs-boundary flags); the few
    regular-expression triggers and terminators in two combined regexes."""

    automaton: Any
    pattern_regex: re.Pattern[str] | None  # trigger and pseudo patterns
    ends_regex: re.Pattern[str] | None  # terminator patterns
    entries: tuple[Entry, ...]
    clause_breaks: str


@dataclass
class _Acc:
    regex: str
    actions: list[Action] = field(default_factory=list)
    pseudo: bool = False
    ends: set[str] = field(default_factory=set)


def literal_regex(term: str) -> str:
    """A literal phrase as a regex: case-insensitive by the caller, any whitespace between words,
    word boundaries at word-character ends."""
    body = r"\s+".join(re.escape(w) for w in term.split())
    if term[:1].isalnum():
        body = r"(?<![A-Za-z0-9])" + body
    if term[-1:].isalnum():
        body += r"(?![A-Za-z0-9])"
    return body


def _err(where: str, msg: str) -> KnowledgeError:
    return KnowledgeError(f"knowledge/notes/{RULES_FILE}", f"{where}: {msg}")


def _strings(group: dict[str, Any], key: str, where: str) -> list[str]:
    vals = group.get(key) or []
    if not isinstance(vals, list):
        raise _err(where, f"'{key}' must be a list of strings")
    for i, v in enumerate(vals):
        if not isinstance(v, str) or not v.strip():
            raise _err(where, f"{key}[{i}] is {v!r}, not a non-empty string (quote YAML words "
                       "such as no/on/yes)")
    return vals


def _check_pattern(p: str, where: str) -> None:
    try:
        rx = re.compile(p, re.IGNORECASE)
    except re.error as exc:
        raise _err(where, f"invalid pattern {p!r}: {exc}") from None
    if rx.match(""):
        raise _err(where, f"pattern {p!r} matches the empty string")


def compile_rules(data: Any) -> TriggerSet:
    """Validate the parsed trigger file and compile it."""
    if not isinstance(data, dict):
        raise _err("top level", "expected a mapping")
    defaults = data.get("defaults") or {}
    fwd_default = defaults.get("forward_max_tokens")
    bwd_default = defaults.get("backward_max_tokens")
    # key: ("t", lowered literal) or ("p", pattern)
    acc: dict[tuple[str, str], _Acc] = {}

    def add(kind: str, text: str, where: str) -> _Acc:
        key = (kind, " ".join(text.lower().split()) if kind == "t" else text)
        if key not in acc:
            if kind == "p":
                _check_pattern(text, where)
            rx = literal_regex(key[1]) if kind == "t" else (
                f"(?<![a-z0-9])(?:{text})(?![a-z0-9])")  # whole words, like the phrases
            acc[key] = _Acc(rx)
        return acc[key]

    for i, g in enumerate(data.get("triggers") or []):
        where = f"triggers[{i}]"
        if not isinstance(g, dict):
            raise _err(where, "expected a mapping")
        cat, direction = g.get("category"), g.get("direction")
        if cat not in TRIGGER_CATEGORIES:
            raise _err(where, f"unknown category {cat!r} (expected one of "
                       f"{', '.join(TRIGGER_CATEGORIES)})")
        if direction not in DIRECTIONS:
            raise _err(where, f"unknown direction {direction!r}")
        mt = g.get("max_tokens", fwd_default if direction == "forward" else bwd_default)
        if mt is not None and (not isinstance(mt, int) or mt < 0):
            raise _err(where, "max_tokens must be a non-negative integer or null")
        terms, pats = _strings(g, "terms", where), _strings(g, "patterns", where)
        if not terms and not pats:
            raise _err(where, "a trigger group needs terms or patterns")
        for kind, items in (("t", terms), ("p", pats)):
            for t in items:
                slot = add(kind, t, where)
                dirs = ("forward", "backward") if direction == "bidirectional" else (direction,)
                for d in dirs:
                    fmt = mt if "max_tokens" in g else (fwd_default if d == "forward"
                                                         else bwd_default)
                    slot.actions.append(Action(cat, d, fmt))
    pseudo = data.get("pseudo") or {}
    for kind, key in (("t", "terms"), ("p", "patterns")):
        for t in _strings(pseudo, key, "pseudo"):
            add(kind, t, "pseudo").pseudo = True
    for i, g in enumerate(data.get("terminators") or []):
        where = f"terminators[{i}]"
        ends = g.get("ends")
        cats = set(TRIGGER_CATEGORIES) if ends == "all" else set(ends or [])
        if not cats or not cats <= set(TRIGGER_CATEGORIES):
            raise _err(where, f"'ends' must be 'all' or a list of "
                       f"{', '.join(TRIGGER_CATEGORIES)}")
        for kind, key in (("t", "terms"), ("p", "patterns")):
            for t in _strings(g, key, where):
                add(kind, t, where).ends.update(cats)
    if not acc:
        raise _err("top level", "no triggers defined")
    # Longest first: at one position the regex takes the first alternative that matches, so a
    # longer phrase ("no increase", "history of present illness") wins over its prefix.
    ordered = sorted(acc.items(), key=lambda kv: (-len(kv[0][1]), kv[0][0], kv[0][1]))
    entries: list[Entry] = []
    parts: list[str] = []
    end_parts: list[str] = []
    auto = ahocorasick.Automaton()
    for n, ((kind, src), a) in enumerate(ordered):
        entries.append(Entry(src, tuple(dict.fromkeys(a.actions)), a.pseudo and not a.actions,
                             frozenset(a.ends)))
        if kind == "t":
            auto.add_word(src, (n, len(src), src[:1].isalnum(), src[-1:].isalnum()))
            continue
        if a.actions or a.pseudo:
            parts.append(f"(?P<g{n}>{a.regex})")
        if a.ends:
            end_parts.append(f"(?P<g{n}>{a.regex})")
    auto.make_automaton()
    big = re.compile("|".join(parts)) if parts else None  # over lower-cased text
    ends_rx = re.compile("|".join(end_parts)) if end_parts else None
    breaks = data.get("clause_breaks", ";")
    if not isinstance(breaks, str):
        raise _err("clause_breaks", "expected a string of characters")
    return TriggerSet(auto, big, ends_rx, tuple(entries), breaks)


def load_rules(path: Path | None = None) -> TriggerSet:
    """Parse and compile the packaged trigger file (or ``path``)."""
    if path is None:
        # in the knowledge base: they change findings, so the ruleset's sha256 covers them
        raw = (resources.files("msc_screen") / "knowledge" / "notes" / RULES_FILE).read_bytes()
    else:
        raw = path.read_bytes()
    try:
        data = load_yaml(raw)
    except yaml.YAMLError as exc:
        raise _err("file", f"not valid YAML: {exc}") from None
    return compile_rules(data)


@lru_cache(maxsize=1)
def default_rules() -> TriggerSet:
    return load_rules()
