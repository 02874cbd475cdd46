"""Every row of evidence.md section 3 is encoded: each listed code is matched by the rule that
should catch it, and each rule carries the transparency of section 5."""

from __future__ import annotations

import pytest

from msc_screen.knowledge import get_ruleset
from msc_screen.knowledge.compiled import CompiledRule

RULE_IDS = {
    "pregnancy", "breastfeeding", "pregnancy-status-unknown", "active-infection",
    "chronic-viral-infection", "immune-disorder", "active-malignancy", "history-of-malignancy",
    "elevated-tumour-marker", "tumour-marker-panel-due", "genetic-marrow-immune-disorder",
    "unstable-angina", "recent-myocardial-infarction", "severe-cardiovascular-disease",
    "active-thrombosis", "thrombotic-risk", "product-hypersensitivity",
    "data-coverage",  # not a contraindication: the record's data is missing or incomplete
}

# (rule, system key, code) from evidence.md section 3 (codes at the depth a record carries them)
EVIDENCE_CODES = [
    ("pregnancy", "snomed", "77386006"), ("pregnancy", "snomed", "72892002"),
    ("pregnancy", "snomed", "79586000"), ("pregnancy", "icd10cm", "O00.0"),
    ("pregnancy", "icd10cm", "O9A.119"), ("pregnancy", "icd10cm", "Z33.1"),
    ("pregnancy", "icd10cm", "Z34.00"), ("pregnancy", "icd10cm", "Z3A.12"),
    ("pregnancy", "loinc", "82810-3"), ("pregnancy", "loinc", "2106-3"),
    ("pregnancy", "loinc", "2118-8"),
    ("breastfeeding", "snomed", "413712001"), ("breastfeeding", "icd10cm", "Z39.1"),
    ("breastfeeding", "loinc", "63895-7"),
    ("active-infection", "snomed", "91302008"), ("active-infection", "icd10cm", "A40.0"),
    ("active-infection", "icd10cm", "A41.9"), ("active-infection", "icd10cm", "R65.20"),
    ("active-infection", "snomed", "233604007"), ("active-infection", "icd10cm", "A15.0"),
    ("active-infection", "icd10cm", "A19.9"), ("active-infection", "snomed", "56717001"),
    ("chronic-viral-infection", "icd10cm", "B20"), ("chronic-viral-infection", "icd10cm", "Z21"),
    ("chronic-viral-infection", "snomed", "86406008"),
    ("chronic-viral-infection", "icd10cm", "B18.0"),
    ("chronic-viral-infection", "icd10cm", "B18.1"),
    ("chronic-viral-infection", "icd10cm", "B18.2"),
    ("immune-disorder", "icd10cm", "D80.1"), ("immune-disorder", "icd10cm", "D84.9"),
    ("immune-disorder", "icd10cm", "M32.9"), ("immune-disorder", "icd10cm", "M05.9"),
    ("immune-disorder", "icd10cm", "M06.9"), ("immune-disorder", "snomed", "55464009"),
    ("immune-disorder", "snomed", "69896004"), ("immune-disorder", "icd10cm", "Z79.69"),
    ("active-malignancy", "icd10cm", "C00.0"), ("active-malignancy", "icd10cm", "C96.A"),
    ("active-malignancy", "icd10cm", "D00.00"), ("active-malignancy", "icd10cm", "D09.9"),
    ("active-malignancy", "snomed", "363406005"), ("active-malignancy", "snomed", "254637007"),
    ("active-malignancy", "snomed", "126906006"), ("active-malignancy", "snomed", "92691004"),
    ("active-malignancy", "snomed", "254837009"), ("active-malignancy", "snomed", "314994000"),
    ("history-of-malignancy", "icd10cm", "Z85.3"), ("history-of-malignancy", "icd10cm", "C44.91"),
    ("elevated-tumour-marker", "loinc", "2039-6"), ("elevated-tumour-marker", "loinc", "1834-1"),
    ("elevated-tumour-marker", "loinc", "10334-1"), ("elevated-tumour-marker", "loinc", "24108-3"),
    ("elevated-tumour-marker", "loinc", "2857-1"), ("elevated-tumour-marker", "loinc", "6875-9"),
    ("genetic-marrow-immune-disorder", "icd10cm", "D61.09"),
    ("genetic-marrow-immune-disorder", "icd10cm", "D61.03"),
    ("genetic-marrow-immune-disorder", "icd10cm", "D61.01"),
    ("genetic-marrow-immune-disorder", "icd10cm", "D61.02"),
    ("genetic-marrow-immune-disorder", "icd10cm", "D81.0"),
    ("genetic-marrow-immune-disorder", "icd10cm", "D81.2"),
    ("genetic-marrow-immune-disorder", "icd10cm", "D82.0"),
    ("genetic-marrow-immune-disorder", "icd10cm", "D71"),
    ("genetic-marrow-immune-disorder", "icd10cm", "D82.1"),
    ("genetic-marrow-immune-disorder", "icd10cm", "Z15.01"),
    ("unstable-angina", "icd10cm", "I20.0"), ("unstable-angina", "snomed", "4557003"),
    ("recent-myocardial-infarction", "icd10cm", "I21.09"),
    ("recent-myocardial-infarction", "icd10cm", "I22.9"),
    ("recent-myocardial-infarction", "snomed", "22298006"),
    ("recent-myocardial-infarction", "snomed", "401303003"),
    ("recent-myocardial-infarction", "snomed", "401314000"),
    ("severe-cardiovascular-disease", "icd10cm", "I50.9"),
    ("active-thrombosis", "icd10cm", "I26.99"), ("active-thrombosis", "icd10cm", "I80.10"),
    ("active-thrombosis", "icd10cm", "I82.401"),
    ("thrombotic-risk", "icd10cm", "I82.501"), ("thrombotic-risk", "icd10cm", "D68.51"),
    ("thrombotic-risk", "icd10cm", "D68.61"), ("thrombotic-risk", "icd10cm", "N18.6"),
]

# codes evidence.md says must NOT match
NOT_MATCHED = [
    ("breastfeeding", "snomed", "169741004"),  # the infant, not the mother
    ("recent-myocardial-infarction", "icd10cm", "I25.2"),  # old MI
    ("recent-myocardial-infarction", "snomed", "399211009"),  # history of MI
    ("genetic-marrow-immune-disorder", "icd10cm", "D57.3"),  # sickle-cell trait
]


def _matches(rule: CompiledRule, key: str, code: str) -> bool:
    return any(vs.contains(key, code)
               for c in (*rule.present_if, *rule.unknown_if, *rule.absent_if)
               for vs in c.valuesets)


def test_all_rules_present() -> None:
    assert {r.id for r in get_ruleset().rules} == RULE_IDS


@pytest.mark.parametrize(("rule", "key", "code"), EVIDENCE_CODES)
def test_evidence_code_is_encoded(rule: str, key: str, code: str) -> None:
    assert _matches(get_ruleset().rule(rule), key, code)


@pytest.mark.parametrize(("rule", "key", "code"), NOT_MATCHED)
def test_excluded_code_is_not_matched(rule: str, key: str, code: str) -> None:
    assert not _matches(get_ruleset().rule(rule), key, code)


def test_severities_follow_the_evidence_table() -> None:
    rs = get_ruleset()
    expected = {
        "pregnancy": "contraindicated", "breastfeeding": "contraindicated",
        "pregnancy-status-unknown": "needs-information", "active-infection": "contraindicated",
        "chronic-viral-infection": "physician-review", "immune-disorder": "physician-review",
        "active-malignancy": "contraindicated", "history-of-malignancy": "contraindicated",
        "elevated-tumour-marker": "physician-review", "tumour-marker-panel-due": "recommendation",
        "genetic-marrow-immune-disorder": "physician-review",
        "unstable-angina": "contraindicated", "recent-myocardial-infarction": "contraindicated",
        "severe-cardiovascular-disease": "physician-review",
        "active-thrombosis": "contraindicated", "thrombotic-risk": "physician-review",
        "product-hypersensitivity": "contraindicated", "data-coverage": "needs-information",
    }
    assert {r.id: r.severity for r in rs.rules} == expected


def test_origins_mark_extensions() -> None:
    origins = {r.id: r.origin for r in get_ruleset().rules}
    assert {k for k, v in origins.items() if v == "evidence"} == {
        "pregnancy-status-unknown", "chronic-viral-infection", "active-thrombosis",
        "thrombotic-risk", "product-hypersensitivity", "data-coverage"}


@pytest.mark.parametrize("rule_id", sorted(RULE_IDS))
def test_transparency_of_every_rule(rule_id: str) -> None:
    rule = get_ruleset().rule(rule_id)
    d = rule.definition
    assert rule.citations, "cites a source"
    if rule.origin == "seed":
        assert any(c["id"] == "seed-article" for c in rule.citations)
    assert d.attributes.released and d.attributes.revised
    assert len(d.rationale) > 150 and len(d.patient_text) > 60
    for word in ("eligible", "cleared"):
        assert word not in d.patient_text.lower()
    for name, p in d.parameters.items():
        assert p.description.strip(), name
    if rule.severity == "contraindicated":
        notes = [c for c in rule.present_if if c.kind == "note"]
        assert all(c.max_severity == "physician-review" for c in notes)


def test_report_order_puts_cross_rule_dependencies_first() -> None:
    ids = [r.id for r in get_ruleset().rules]
    assert ids.index("pregnancy") < ids.index("pregnancy-status-unknown")
    assert ids.index("active-malignancy") < ids.index("tumour-marker-panel-due")
