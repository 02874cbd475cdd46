"""Concept vocabulary: for each rule, the words that express it in notes
(``knowledge/vocabulary/<rule-id>.yaml``), validated, linted and compiled once into an
Aho-Corasick automaton (case-insensitive terms), a case-sensitive abbreviation regex and a
combined regex of patterns.

File schema (every list optional, at least one of terms/abbreviations/patterns required):
  rule: <rule id>            # must equal the file name
  description: <text>
  terms: [...]               # case-insensitive phrases, whole words ("heart attack")
  misspellings: [...]        # as terms ("pregant")
  abbreviations: [...]       # case-sensitive, whole words ("MI", "IUP", "CA")
  patterns: [...]            # Python regexes in lower case, run over the lower-cased note,
                             # whole words; "..." or {pattern: "...", anchors: [words]} - with
                             # anchors the pattern only runs near those words (fast)
  exclude: [...]             # phrases in which a match does not count ("CA-125", "ca++")
  plurals: true              # also match terms + "s"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import KnowledgeError
from ..knowledge.loader import load_yaml

LIST_KEYS = ("terms", "misspellings", "abbreviations", "patterns", "exclude")
KNOWN_KEYS = frozenset({"rule", "description", "plurals", "notes", *LIST_KEYS})


@dataclass(frozen=True, slots=True)
class Pattern:
    pattern: str
    anchors: tuple[str, ...] = ()  # words (lower case) near which the pattern can match


@dataclass(slots=True)
class RuleVocabulary:
    rule: str
    description: str = ""
    terms: list[str] = field(default_factory=list)
    misspellings: list[str] = field(default_factory=list)
    abbreviations: list[str] = field(default_factory=list)
    patterns: list[Pattern] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    plurals: bool = True


def vocabulary_dir() -> Path:
    return Path(str(resources.files("msc_screen") / "knowledge" / "vocabulary"))


def _norm(term: str) -> str:
    return " ".join(term.lower().split())


def parse_vocabulary(rule: str, data: Any, where: str) -> RuleVocabulary:
    """Validate one vocabulary file's data; raise KnowledgeError naming file and key."""
    if not isinstance(data, dict):
        raise KnowledgeError(where, "expected a mapping")
    if data.get("rule", rule) != rule:
        raise KnowledgeError(where, f"'rule' is {data.get('rule')!r} but the file is named "
                             f"for {rule!r}", key="rule")
    v = RuleVocabulary(rule=rule, description=str(data.get("description") or ""),
                       plurals=bool(data.get("plurals", True)))
    for key in LIST_KEYS:
        vals = data.get(key) or []
        if not isinstance(vals, list):
            raise KnowledgeError(where, "expected a list", key=key)
        if key == "patterns":
            v.patterns = [_parse_pattern(p, i, where) for i, p in enumerate(vals)]
            continue
        for i, t in enumerate(vals):
            if not isinstance(t, str) or not t.strip():
                raise KnowledgeError(where, f"item {i} is empty or not a string", key=key)
        setattr(v, key, [str(t) for t in vals])
    if not (v.terms or v.abbreviations or v.patterns):
        raise KnowledgeError(where, "no terms, abbreviations or patterns")
    return v


def _parse_pattern(item: Any, i: int, where: str) -> Pattern:
    if isinstance(item, dict):
        p, anchors = item.get("pattern"), item.get("anchors") or []
    else:
        p, anchors = item, []
    if not isinstance(p, str) or not p.strip():
        raise KnowledgeError(where, f"item {i}: a pattern must be a non-empty string",
                             key="patterns")
    err = pattern_problem(p)
    if err:
        raise KnowledgeError(where, f"item {i} {p!r}: {err}", key="patterns")
    if not isinstance(anchors, list) or not all(
            isinstance(a, str) and a.strip() and a == a.lower() for a in anchors):
        raise KnowledgeError(where, f"item {i}: 'anchors' must be a list of lower-case words",
                             key="patterns")
    return Pattern(p, tuple(a.strip() for a in anchors))


def pattern_problem(p: str) -> str | None:
    try:
        rx = re.compile(p, re.IGNORECASE)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    if rx.groupindex:
        return "named groups are not allowed"
    bare = re.sub(r"\[(?:\\.|[^\]])*\]", "", re.sub(r"\\.", "", p))
    if any(c.isupper() for c in bare):
        return "write patterns in lower case: they match the lower-cased note"
    if rx.fullmatch(""):
        return "matches the empty string"
    return None


def load_vocabularies(directory: Path | None = None) -> dict[str, RuleVocabulary]:
    """Every ``<rule-id>.yaml`` in the vocabulary directory, validated."""
    d = directory or vocabulary_dir()
    out: dict[str, RuleVocabulary] = {}
    for p in sorted(d.glob("*.yaml")):
        where = f"vocabulary/{p.name}"
        try:
            data = load_yaml(p.read_bytes())
        except yaml.YAMLError as exc:
            raise KnowledgeError(where, f"not valid YAML: {exc}") from None
        out[p.stem] = parse_vocabulary(p.stem, data, where)
    return out


def _finding(severity: str, location: str, message: str) -> dict[str, str]:
    return {"severity": severity, "check": "note-vocabulary", "location": location,
            "where": location, "message": message}


def lint_vocabulary(kb: Any) -> list[dict[str, str]]:
    """Findings for the knowledge-base linter: unknown rule ids, invalid regexes, empty or
    duplicate terms, unknown keys; also rules with a ``note`` criterion but no vocabulary."""
    findings: list[dict[str, str]] = []
    vocab: dict[str, Any] = dict(getattr(kb, "vocabulary", {}) or {})
    rules: dict[str, Any] = dict(getattr(kb, "rules", {}) or {})
    for rule_id in sorted(vocab):
        data = vocab[rule_id]
        loc = f"vocabulary/{rule_id}.yaml"
        if rule_id not in rules:
            findings.append(_finding("error", loc, f"no rule with id {rule_id!r}"))
        if not isinstance(data, dict):
            findings.append(_finding("error", loc, "expected a mapping"))
            continue
        for k in sorted(set(data) - KNOWN_KEYS):
            findings.append(_finding("warning", f"{loc} [{k}]", f"unknown key {k!r}"))
        if data.get("rule", rule_id) != rule_id:
            findings.append(_finding("error", f"{loc} [rule]",
                                     f"'rule' is {data.get('rule')!r}, file is {rule_id!r}"))
        seen: dict[str, str] = {}
        for key in LIST_KEYS:
            vals = data.get(key) or []
            if not isinstance(vals, list):
                findings.append(_finding("error", f"{loc} [{key}]", "expected a list"))
                continue
            for i, t in enumerate(vals):
                where = f"{loc} [{key}][{i}]"
                if key == "patterns" and isinstance(t, dict):
                    anchors = t.get("anchors") or []
                    t = t.get("pattern")
                    if isinstance(t, str) and not anchors:
                        findings.append(_finding("info", where, "pattern without anchors is "
                                                 "run over the whole note (slower)"))
                if not isinstance(t, str) or not t.strip():
                    findings.append(_finding("error", where, "empty or not a string"))
                    continue
                if t != t.strip():
                    findings.append(_finding("warning", where,
                                             f"{t!r} has leading/trailing spaces"))
                if key == "patterns":
                    err = pattern_problem(t)
                    if err:
                        findings.append(_finding("error", where, f"{t!r}: {err}"))
                    continue
                if key == "exclude":
                    continue
                n = t if key == "abbreviations" else _norm(t)
                if n in seen:
                    findings.append(_finding("warning", where,
                                             f"duplicate term {t!r} (also in {seen[n]})"))
                else:
                    seen[n] = key
                if key != "abbreviations" and len(n) < 3:
                    findings.append(_finding("warning", where, f"{t!r} is very short for a "
                                             "case-insensitive term; list it under abbreviations"))
        if not any(data.get(k) for k in ("terms", "abbreviations", "patterns")):
            findings.append(_finding("error", loc, "no terms, abbreviations or patterns"))
    for rule_id, rule in sorted(rules.items()):
        crits = [*(getattr(rule, "present_if", None) or []),
                 *(getattr(rule, "unknown_if", None) or [])]
        if any(getattr(c, "kind", None) == "note" for c in crits) and rule_id not in vocab:
            findings.append(_finding("error", f"rules/{rule_id}.yaml",
                                     "has a note criterion but no vocabulary file"))
    return findings
