"""The linter passes on the shipped knowledge base and catches planted errors in a copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from msc_screen.knowledge import compile_ruleset, load_knowledge_base
from msc_screen.knowledge.lint import (
    CHECKS,
    LintFinding,
    check_note_vocabulary,
    has_errors,
    lint,
    lint_kb,
)
from msc_screen.knowledge.loader import package_root

OWN_CHECKS = [c for c in CHECKS if c is not check_note_vocabulary]


@pytest.fixture(scope="module")
def shipped() -> list[LintFinding]:
    return lint()


def test_shipped_knowledge_base_has_no_lint_errors(shipped: list[LintFinding]) -> None:
    errors = [f for f in shipped if f.severity == "error"]
    assert errors == [], "\n".join(f"{f.where}: {f.message}" for f in errors)


def test_shipped_rules_have_no_warnings() -> None:
    # the notes vocabulary has its own linter and owner; the rules themselves are warning-free
    found = lint_kb(load_knowledge_base(), OWN_CHECKS)
    warnings = [f for f in found if f.severity == "warning"]
    assert warnings == [], "\n".join(f"{f.where}: {f.message}" for f in warnings)


@pytest.fixture()
def kb_copy(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    shutil.copytree(package_root(), root)
    return root


def _edit(path: Path, fn: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _errors(root: Path) -> list[LintFinding]:
    return [f for f in lint(root) if f.severity == "error"]


def test_copy_is_clean_and_compiles(kb_copy: Path) -> None:
    kb = load_knowledge_base(kb_copy)
    rs = compile_ruleset(kb, kb.policies["default"], "test")
    assert len(rs.rules) == 18
    assert not has_errors(lint_kb(kb, OWN_CHECKS))


def test_catches_bad_icd_code(kb_copy: Path) -> None:
    _edit(kb_copy / "valuesets/infections-systemic.yaml",
          lambda d: d["include"][1]["codes"].append({"code": "A41.X9"}))
    errs = _errors(kb_copy)
    assert any(f.check == "icd10cm" and "A41.X9" in f.message
               and f.where == "valuesets/infections-systemic.yaml" for f in errs)


def test_catches_bad_icd_range_end(kb_copy: Path) -> None:
    _edit(kb_copy / "valuesets/malignancy-conditions.yaml",
          lambda d: d["include"][1].update(ranges=["C00-C9Z"]))
    assert any(f.check == "icd10cm-range" for f in _errors(kb_copy))


def test_catches_subcategory_range(kb_copy: Path) -> None:
    _edit(kb_copy / "valuesets/thrombophilia-conditions.yaml",
          lambda d: d["include"][1].update(ranges=["D68.5-D68.6"]))
    assert any(f.check == "icd10cm-range" and "categories" in f.message
               for f in _errors(kb_copy))


def test_catches_bad_snomed_check_digit(kb_copy: Path) -> None:
    # 91302008 (sepsis) with its last digit changed
    _edit(kb_copy / "valuesets/infections-systemic.yaml",
          lambda d: d["include"][0]["codes"].append({"code": "91302009"}))
    assert any(f.check == "snomed" and "91302009" in f.message for f in _errors(kb_copy))


def test_catches_bad_loinc_check_digit(kb_copy: Path) -> None:
    _edit(kb_copy / "valuesets/tumour-marker-observations.yaml",
          lambda d: d["include"][0]["codes"].append({"code": "2039-7"}))
    assert any(f.check == "loinc" and "2039-7" in f.message for f in _errors(kb_copy))


def test_catches_bad_action_code(kb_copy: Path) -> None:
    _edit(kb_copy / "rules/tumour-marker-panel-due.yaml",
          lambda d: d["actions"][0]["codes"].append({"system": "loinc", "code": "1834-2"}))
    assert any(f.check == "action-code" for f in _errors(kb_copy))


def test_unknown_value_set_is_a_schema_error(kb_copy: Path) -> None:
    _edit(kb_copy / "rules/active-infection.yaml",
          lambda d: d["present_if"][0].update(valueset="no-such-valueset"))
    errs = _errors(kb_copy)
    assert len(errs) == 1
    assert errs[0].check == "schema"
    assert "rules/active-infection.yaml" in errs[0].where
    assert "no-such-valueset" in errs[0].message


def test_unknown_key_is_a_schema_error_naming_the_file(kb_copy: Path) -> None:
    _edit(kb_copy / "rules/pregnancy.yaml", lambda d: d.update(severty="contraindicated"))
    errs = _errors(kb_copy)
    assert errs and errs[0].check == "schema" and "pregnancy.yaml" in errs[0].where


def test_flags_unused_value_set_and_citation(kb_copy: Path) -> None:
    (kb_copy / "valuesets/orphan.yaml").write_text(
        "id: orphan\ntitle: Orphan\nversion: '1'\n"
        "url: https://msc-screen.org/fhir/ValueSet/orphan\n"
        "project_authored: a set planted by the test\n"
        "include:\n  - system: snomed\n    codes:\n"
        "      - {code: '91302008'}\n", encoding="utf-8")
    cpath = kb_copy / "citations.yaml"
    cits = yaml.safe_load(cpath.read_text(encoding="utf-8"))
    cits.append({"id": "nobody-2020", "text": "Uncited source."})
    cpath.write_text(yaml.safe_dump(cits, sort_keys=False), encoding="utf-8")
    found = lint_kb(load_knowledge_base(kb_copy), OWN_CHECKS)
    assert any(f.check == "unused-valueset" and "orphan" in f.where for f in found)
    assert any(f.check == "unused-citation" and "nobody-2020" in f.where for f in found)
    assert not has_errors(found)  # unused data is a warning, not an error


def test_flags_enable_when_to_unknown_question(kb_copy: Path) -> None:
    def plant(d: dict[str, object]) -> None:
        d["questions"][1]["enable_when"][0]["question"] = "no-such-question"  # type: ignore[index]

    _edit(kb_copy / "rules/pregnancy.yaml", plant)
    assert any(f.check == "question" and "no-such-question" in f.message
               for f in _errors(kb_copy))


def test_flags_questionnaire_answer_not_an_option(kb_copy: Path) -> None:
    _edit(kb_copy / "rules/breastfeeding.yaml",
          lambda d: d["unknown_if"][0].update(answers=["maybe"]))
    assert any(f.check == "question" and "'maybe'" in f.message for f in _errors(kb_copy))


def test_flags_forbidden_wording(kb_copy: Path) -> None:
    _edit(kb_copy / "rules/immune-disorder.yaml",
          lambda d: d.update(patient_text="You are eligible for treatment."))
    assert any(f.check == "wording" for f in _errors(kb_copy))


def test_flags_undocumented_parameter(kb_copy: Path) -> None:
    _edit(kb_copy / "rules/active-infection.yaml",
          lambda d: d["parameters"]["recent_days"].update(description="x"))
    assert any(f.check == "parameter-doc" for f in _errors(kb_copy))


def test_a_crashing_check_is_reported_not_raised() -> None:
    def broken(kb: object) -> list[LintFinding]:
        raise RuntimeError("boom")

    kb = load_knowledge_base()
    found = lint_kb(kb, [broken])
    assert [(f.severity, f.check) for f in found] == [("error", "broken")]


def test_checks_are_extensible() -> None:
    assert all(callable(c) for c in CHECKS)
    names = {c.__name__ for c in CHECKS}
    assert {"check_value_set_codes", "check_questions", "check_note_vocabulary"} <= names


def test_note_vocabulary_findings_are_included(monkeypatch: pytest.MonkeyPatch) -> None:
    import msc_screen.notes as notes

    def fake(kb: object) -> list[dict[str, str]]:
        return [{"severity": "critical", "check": "vocab", "where": "vocabulary/x.yaml",
                 "message": "planted"}]

    monkeypatch.setattr(notes, "lint_vocabulary", fake, raising=False)
    found = lint_kb(load_knowledge_base(), [check_note_vocabulary])
    assert [(f.severity, f.check, f.where) for f in found] == [
        ("error", "vocab", "vocabulary/x.yaml")]
