"""Vocabulary files: every rule has one, they load, and the linter finds real problems."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from msc_screen.errors import KnowledgeError
from msc_screen.knowledge import get_ruleset
from msc_screen.notes import lint_vocabulary, load_vocabularies
from msc_screen.notes.triggers import compile_rules, default_rules
from msc_screen.notes.vocabulary import parse_vocabulary


def test_every_rule_has_a_vocabulary_and_the_kb_lints_clean() -> None:
    kb = get_ruleset().kb
    vocab = load_vocabularies()
    # every rule about the patient's health (data-coverage is about the record, not the person)
    assert set(vocab) == set(kb.rules) - {"data-coverage"}
    errors = [f for f in lint_vocabulary(kb) if f["severity"] in ("error", "warning")]
    assert errors == []


def _kb(vocab: dict, rules: tuple[str, ...] = ("pregnancy",)) -> SimpleNamespace:  # type: ignore[type-arg]
    return SimpleNamespace(vocabulary=vocab, rules={r: SimpleNamespace(present_if=[],
                                                                       unknown_if=[])
                                                    for r in rules})


def test_lint_finds_duplicates_empty_terms_bad_regexes_and_unknown_rules() -> None:
    kb = _kb({
        "pregnancy": {"terms": ["pregnant", "Pregnant ", ""], "patterns": ["(unclosed",
                                                                          "G\\d", "x*"],
                      "colour": "red"},
        "no-such-rule": {"terms": ["thing"]},
    })
    msgs = [(f["severity"], f["location"], f["message"]) for f in lint_vocabulary(kb)]
    text = "\n".join(f"{s} {loc} {m}" for s, loc, m in msgs)
    assert "error vocabulary/no-such-rule.yaml no rule with id 'no-such-rule'" in text
    assert "duplicate term 'Pregnant '" in text
    assert "[terms][2] empty or not a string" in text
    assert "invalid regular expression" in text
    assert "write patterns in lower case" in text
    assert "matches the empty string" in text
    assert "unknown key 'colour'" in text


def test_lint_reports_a_note_rule_without_vocabulary() -> None:
    rule = SimpleNamespace(present_if=[SimpleNamespace(kind="note")], unknown_if=[])
    kb = SimpleNamespace(vocabulary={}, rules={"breastfeeding": rule})
    assert any(f["severity"] == "error" and "no vocabulary file" in f["message"]
               for f in lint_vocabulary(kb))


def test_loading_errors_name_file_and_key() -> None:
    with pytest.raises(KnowledgeError, match=r"x.yaml \[patterns\].*invalid regular"):
        parse_vocabulary("x", {"terms": ["a b c"], "patterns": ["(bad"]}, "x.yaml")
    with pytest.raises(KnowledgeError, match=r"'rule' is 'y'"):
        parse_vocabulary("x", {"rule": "y", "terms": ["abc"]}, "x.yaml")
    with pytest.raises(KnowledgeError, match="no terms"):
        parse_vocabulary("x", {"exclude": ["abc"]}, "x.yaml")


def test_load_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "pregnancy.yaml").write_text("terms: [gravid]\n")
    (tmp_path / "bad.yaml").write_text("terms: [unclosed\n")
    with pytest.raises(KnowledgeError, match=r"bad\.yaml: not valid YAML"):
        load_vocabularies(tmp_path)


def test_trigger_file_errors_are_precise() -> None:
    assert default_rules().entries
    with pytest.raises(KnowledgeError, match=r"triggers\[0\]: unknown category 'neg'"):
        compile_rules({"triggers": [{"category": "neg", "direction": "forward",
                                     "terms": ["no"]}]})
    with pytest.raises(KnowledgeError, match=r"triggers\[0\]: terms\[0\] is False"):
        compile_rules({"triggers": [{"category": "negated", "direction": "forward",
                                     "terms": [False]}]})
    with pytest.raises(KnowledgeError, match=r"invalid pattern"):
        compile_rules({"triggers": [{"category": "negated", "direction": "forward",
                                     "patterns": ["(x"]}]})
