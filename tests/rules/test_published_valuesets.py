"""Codes real records carry that the value sets built from published VSAC sources now match.

Each record carries only a code (no display, no text), so a finding can come from the value set
alone: not from the safety net or an ingredient name, which read words. The finding is asserted
at the rule's full severity (the safety net caps at review) with the record's code as evidence.
Codes were checked against the displays of the published VSAC value sets they come from (or, for
the few project-authored additions, public listings named in the value set's YAML).
"""

from __future__ import annotations

from typing import Any

import pytest

import msc_screen
from factories import (
    AS_OF,
    ICD10CM,
    LOINC,
    SNOMED,
    bundle,
    condition,
    days_before,
    medication_request,
    observation,
    patient,
)
from msc_screen.model import Assessment, Finding


def _screen(*resources: dict[str, Any], pat: dict[str, Any] | None = None) -> Assessment:
    """Through the public API, as the patient's whole chart (what it does not hold, the
    patient does not have)."""
    return msc_screen.screen(bundle(*resources, pat=pat), as_of=AS_OF, complete="all")


def _finding(a: Assessment, rule: str) -> Finding:
    return next(f for f in a.findings if f.rule == rule)


def _present_by_code(a: Assessment, rule: str, code: str, severity: str) -> None:
    f = _finding(a, rule)
    assert (f.status, f.severity) == ("present", severity), (rule, code, f.summary)
    assert any(e.code is not None and e.code.code == code and not e.uncertain
               for e in f.evidence), f.evidence


# ---------------------------------------------------------------------------- malignancy

@pytest.mark.parametrize(("code", "system"), [
    ("93761005", SNOMED),  # Primary malignant neoplasm of colon (Synthea)
    ("94260004", SNOMED),  # Secondary (metastatic) malignant neoplasm of colon
    ("425048006", SNOMED),  # Non-small cell carcinoma of lung, TNM stage 2
    ("422968005", SNOMED),  # ... stage 3
    ("423121009", SNOMED),  # ... stage 4
    ("67821000119109", SNOMED),  # Primary small cell malignant neoplasm of lung, TNM stage 2
    ("67831000119107", SNOMED),  # ... stage 3
    ("67841000119103", SNOMED),  # ... stage 4
    ("91861009", SNOMED),  # Acute myeloid leukemia
    ("C92.00", ICD10CM),  # Acute myeloblastic leukemia, not having achieved remission
    ("109989006", SNOMED),  # Multiple myeloma
    ("C90.00", ICD10CM),  # Multiple myeloma not having achieved remission
    ("94503003", SNOMED),  # Metastatic malignant neoplasm to prostate
    ("712849003", SNOMED),  # Primary malignant neoplasm of prostate metastatic to bone
    ("459381000124106", SNOMED),  # Metastasis from hormone-refractory prostate cancer
])
def test_current_cancer_codes_are_active_malignancy(code: str, system: str) -> None:
    a = _screen(condition(code, system, onset=days_before(60)))
    _present_by_code(a, "active-malignancy", code, "contraindicated")
    assert a.decision == "contraindicated"


def test_resolved_primary_colon_cancer_is_history_of_malignancy() -> None:
    a = _screen(condition("93761005", onset="2015-01-01", abatement="2016-06-01",
                          clinical="resolved"))
    assert _finding(a, "active-malignancy").status == "absent"
    _present_by_code(a, "history-of-malignancy", "93761005", "contraindicated")


def test_narrowed_out_neoplasms_are_not_cancer() -> None:
    # adrenal cortical adenoma (benign, dropped from the Cancer set): nothing from the codes
    benign = _screen(condition("302826002", onset=days_before(60)))
    assert _finding(benign, "active-malignancy").status == "absent"
    # a neoplasm of uncertain behaviour is read for review, not as cancer
    uncertain = _screen(condition("D37.4", ICD10CM, onset=days_before(60)))
    _present_by_code(uncertain, "active-malignancy", "D37.4", "physician-review")


# ------------------------------------------------------------------------------ infection

@pytest.mark.parametrize(("code", "system"), [
    ("A41.51", ICD10CM),  # Sepsis due to Escherichia coli
    ("A40.3", ICD10CM),  # Sepsis due to Streptococcus pneumoniae
    ("448417001", SNOMED),  # Sepsis caused by Staphylococcus aureus (Synthea)
    ("448813005", SNOMED),  # Sepsis caused by Pseudomonas (Synthea)
    ("770349000", SNOMED),  # Sepsis caused by virus (Synthea)
])
def test_sepsis_by_organism_is_an_active_infection(code: str, system: str) -> None:
    a = _screen(condition(code, system, onset=days_before(5)))
    _present_by_code(a, "active-infection", code, "contraindicated")


def test_aids_is_a_chronic_viral_infection() -> None:
    a = _screen(condition("62479008", onset="2010-01-01"))  # Acquired immune deficiency syndrome
    _present_by_code(a, "chronic-viral-infection", "62479008", "physician-review")


def test_acute_hepatitis_b_is_an_active_infection_not_chronic_carriage() -> None:
    a = _screen(condition("76795007", onset=days_before(10)))  # Acute type B viral hepatitis
    _present_by_code(a, "active-infection", "76795007", "contraindicated")
    assert _finding(a, "chronic-viral-infection").status == "absent"


# -------------------------------------------------------------------------------- cardiac

@pytest.mark.parametrize("code", ["129574000", "1163440003"])  # postoperative (acute) MI
def test_postoperative_mi_within_the_window_is_recent(code: str) -> None:
    a = _screen(condition(code, onset=days_before(30)))
    _present_by_code(a, "recent-myocardial-infarction", code, "contraindicated")
    old = _screen(condition(code, onset=days_before(400)))
    assert _finding(old, "recent-myocardial-infarction").status == "absent"


def test_old_mi_codes_are_not_recent() -> None:
    # "Past MI diagnosed on ECG, no symptoms" (dropped from the published MI sets) and I25.2
    for code, system in (("32574007", SNOMED), ("I25.2", ICD10CM)):
        a = _screen(condition(code, system, onset=days_before(5)))
        f = _finding(a, "recent-myocardial-infarction")
        assert not (f.status == "present" and f.severity == "contraindicated"), code


def test_stable_angina_is_not_unstable_angina() -> None:
    a = _screen(condition("233819005", onset=days_before(5)))  # Stable angina
    f = _finding(a, "unstable-angina")
    assert not (f.status == "present" and f.severity == "contraindicated")


# ----------------------------------------------------------------------------- thrombosis

@pytest.mark.parametrize(("code", "system"), [
    ("132291000119106", SNOMED),  # Acute deep venous thrombosis of femoral vein
    ("132281000119108", SNOMED),  # Acute deep venous thrombosis (Synthea)
    ("I82.411", ICD10CM),  # Acute embolism and thrombosis of right femoral vein
    ("233936003", SNOMED),  # Acute massive pulmonary embolism
    ("706870000", SNOMED),  # Acute pulmonary embolism (Synthea)
    ("I26.99", ICD10CM),  # Other pulmonary embolism without acute cor pulmonale
])
def test_acute_dvt_and_pe_are_active_thrombosis(code: str, system: str) -> None:
    a = _screen(condition(code, system, onset=days_before(20)))
    _present_by_code(a, "active-thrombosis", code, "contraindicated")


def test_phlebitis_of_unspecified_site_is_risk_not_an_active_clot() -> None:
    a = _screen(condition("I80.9", ICD10CM, onset=days_before(20)))
    assert _finding(a, "active-thrombosis").status == "absent"
    _present_by_code(a, "thrombotic-risk", "I80.9", "physician-review")


@pytest.mark.parametrize(("code", "system"), [
    ("46177005", SNOMED),  # End-stage renal disease (Synthea)
    ("236435004", SNOMED),  # End stage renal failure on dialysis
    ("N18.6", ICD10CM),  # End stage renal disease
])
def test_end_stage_renal_disease_is_thrombotic_risk(code: str, system: str) -> None:
    a = _screen(condition(code, system, onset="2020-01-01"))
    _present_by_code(a, "thrombotic-risk", code, "physician-review")


# ------------------------------------------------------------------------- immune disorder

@pytest.mark.parametrize(("code", "system"), [
    ("200936003", SNOMED),  # Lupus erythematosus
    ("Z94.0", ICD10CM),  # Kidney transplant status
    ("161665007", SNOMED),  # History of renal transplant (Synthea)
    ("737295003", SNOMED),  # Transplanted kidney present
])
def test_lupus_and_kidney_transplant_status_are_immune_disorders(code: str, system: str
                                                                 ) -> None:
    a = _screen(condition(code, system, onset="2018-01-01"))
    _present_by_code(a, "immune-disorder", code, "physician-review")


def test_hypermobility_is_not_an_immune_disorder() -> None:
    a = _screen(condition("M35.7", ICD10CM, onset="2018-01-01"))
    f = _finding(a, "immune-disorder")
    assert not any(e.code is not None and e.code.code == "M35.7" and not e.uncertain
                   for e in f.evidence)


# ------------------------------------------------------------------- product-level RxNorm

@pytest.mark.parametrize(("code", "rule", "severity"), [
    ("854235", "thrombotic-risk", "physician-review"),  # 0.4 ML enoxaparin 100 MG/ML syringe
    ("1361615", "thrombotic-risk", "physician-review"),  # heparin 5000 UNT/ML solution
    ("198377", "immune-disorder", "physician-review"),  # tacrolimus 1 MG Oral Capsule
    ("197553", "immune-disorder", "physician-review"),  # cyclosporine 25 MG Oral Capsule
    ("597195", "active-malignancy", "contraindicated"),  # carboplatin 10 MG/ML solution
    ("1790097", "active-malignancy", "contraindicated"),  # 5 ML doxorubicin 2 MG/ML injection
])
def test_clinical_drug_codes_match_by_code(code: str, rule: str, severity: str) -> None:
    a = _screen(medication_request(code, authored=days_before(20)))
    _present_by_code(a, rule, code, severity)


def test_line_flush_heparin_is_not_anticoagulation() -> None:
    # 1000 ML heparin 2 UNT/ML (an arterial-line flush), dropped from the published set
    a = _screen(medication_request("1658690", authored=days_before(20)))
    assert _finding(a, "thrombotic-risk").status == "absent"


# -------------------------------------------------------------------------- tumour markers

def test_method_specific_psa_above_its_default_limit_is_elevated() -> None:
    high = _screen(observation("83112-3", LOINC, effective=days_before(30), value=9.5,
                               unit="ng/mL"), pat=patient("male"))
    _present_by_code(high, "elevated-tumour-marker", "83112-3", "physician-review")
    normal = _screen(observation("83112-3", LOINC, effective=days_before(30), value=1.2,
                                 unit="ng/mL"), pat=patient("male"))
    assert _finding(normal, "elevated-tumour-marker").status == "absent"


# ------------------------------------------------------------------------------ pregnancy

@pytest.mark.parametrize(("code", "system"), [
    ("398254007", SNOMED),  # Pre-eclampsia (Synthea)
    ("198992004", SNOMED),  # Eclampsia in pregnancy (Synthea)
    ("O14.13", ICD10CM),  # Severe pre-eclampsia, third trimester
    ("O15.03", ICD10CM),  # Eclampsia complicating pregnancy, third trimester
    ("Z32.01", ICD10CM),  # Encounter for pregnancy test, result positive
])
def test_pre_eclampsia_eclampsia_and_positive_test_code_are_pregnancy(code: str,
                                                                      system: str) -> None:
    a = _screen(condition(code, system, onset=days_before(10)))
    _present_by_code(a, "pregnancy", code, "contraindicated")


def test_pre_eclampsia_of_the_puerperium_is_not_a_current_pregnancy() -> None:
    a = _screen(condition("O14.05", ICD10CM, onset=days_before(10)))
    f = _finding(a, "pregnancy")
    assert not any(e.code is not None and e.code.code == "O14.05" for e in f.evidence)


def test_quantitative_hcg_positive_and_negative() -> None:
    pos = _screen(observation("21198-7", LOINC, effective=days_before(3), value=1250.0,
                              unit="m[IU]/mL"))
    _present_by_code(pos, "pregnancy", "21198-7", "contraindicated")
    neg = _screen(observation("21198-7", LOINC, effective=days_before(3), value=2.0,
                              unit="m[IU]/mL"))
    assert _finding(neg, "pregnancy").status == "absent"
    assert _finding(neg, "pregnancy-status-unknown").status == "absent"
    # with no test at all, a woman of child-bearing age needs one
    none = _screen()
    assert _finding(none, "pregnancy-status-unknown").status == "unknown"


def test_cord_blood_hcg_is_not_the_mothers_test() -> None:
    a = _screen(observation("55870-0", LOINC, effective=days_before(3), value=900.0,
                            unit="m[IU]/mL", ref_high=5.0))
    assert _finding(a, "pregnancy").status == "absent"
