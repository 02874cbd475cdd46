"""Unstable angina, recent MI, severe cardiovascular disease, active thrombosis, thrombotic
risk and product hypersensitivity."""

from __future__ import annotations

import pytest

from factories import (
    ICD10CM,
    RXNORM,
    allergy,
    condition,
    days_before,
    medication_request,
    outcome,
    questionnaire_response,
    screen,
)

# --------------------------------------------------------------------------- unstable angina


@pytest.mark.parametrize(("days", "severity"), [(90, "contraindicated"),
                                                (91, "physician-review")])
def test_unstable_angina_window(days: int, severity: str) -> None:
    a = screen(condition("I20.0", ICD10CM, onset=days_before(days)))
    assert outcome(a, "unstable-angina") == ("present", severity)


def test_unstable_angina_snomed_resolved_and_stable_angina() -> None:
    assert outcome(screen(condition("4557003", onset=days_before(5))),
                   "unstable-angina") == ("present", "contraindicated")
    resolved = screen(condition("4557003", onset=days_before(60), abatement=days_before(30),
                                clinical="resolved"))
    assert outcome(resolved, "unstable-angina")[0] == "absent"
    stable = screen(condition("I20.9", ICD10CM, onset=days_before(5)))  # angina, unspecified
    assert outcome(stable, "unstable-angina")[0] == "absent"


# --------------------------------------------------------------------------------- recent MI


@pytest.mark.parametrize(("days", "status"), [(90, "present"), (91, "absent")])
def test_recent_mi_default_window(days: int, status: str) -> None:
    # Synthea's MI 22298006; resolved or not, the onset date decides
    a = screen(condition("22298006", onset=days_before(days), abatement=days_before(days - 5),
                         clinical="resolved"))
    assert outcome(a, "recent-myocardial-infarction")[0] == status


@pytest.mark.parametrize("code", ["I21.4", "I21.A1", "I22.0", "I21"])
def test_recent_mi_icd_codes(code: str) -> None:
    a = screen(condition(code, ICD10CM, onset=days_before(20)))
    assert outcome(a, "recent-myocardial-infarction") == ("present", "contraindicated")


def test_old_mi_and_history_of_mi_are_not_recent() -> None:
    assert outcome(screen(condition("I25.2", ICD10CM, onset=days_before(5))),
                   "recent-myocardial-infarction")[0] == "absent"
    assert outcome(screen(condition("399211009", onset=days_before(5))),
                   "recent-myocardial-infarction")[0] == "absent"


def test_mi_without_onset_is_review_with_reason() -> None:
    a = screen(condition("I21.9", ICD10CM))
    status, severity = outcome(a, "recent-myocardial-infarction")
    assert (status, severity) == ("present", "physician-review")


def test_mi_questionnaire_date() -> None:
    recent = screen(questionnaire_response({"heart-attack": "yes",
                                            "heart-attack-date": days_before(90)}))
    assert outcome(recent, "recent-myocardial-infarction")[0] == "present"
    old = screen(questionnaire_response({"heart-attack": "yes",
                                         "heart-attack-date": days_before(91)}))
    assert outcome(old, "recent-myocardial-infarction")[0] == "absent"
    unsure = screen(questionnaire_response({"heart-attack": "unsure"}))
    assert outcome(unsure, "recent-myocardial-infarction") == ("unknown", "needs-information")


# ----------------------------------------------------------------- severe cardiovascular disease


@pytest.mark.parametrize(("code", "system"), [
    ("88805009", "http://snomed.info/sct"),  # chronic CHF (Synthea)
    ("I50.23", ICD10CM), ("I16.1", ICD10CM), ("I47.20", ICD10CM), ("I42.0", ICD10CM),
])
def test_severe_cardiovascular_is_review(code: str, system: str) -> None:
    a = screen(condition(code, system, onset="2020-01-01"))
    assert outcome(a, "severe-cardiovascular-disease") == ("present", "physician-review")


def test_plain_hypertension_is_not_severe() -> None:
    a = screen(condition("38341003", onset="2010-01-01"))
    assert outcome(a, "severe-cardiovascular-disease")[0] == "absent"


@pytest.mark.parametrize(("days", "status"), [(90, "present"), (91, "absent")])
def test_recent_stroke_window(days: int, status: str) -> None:
    a = screen(condition("I63.9", ICD10CM, onset=days_before(days)))
    assert outcome(a, "severe-cardiovascular-disease")[0] == status


# ------------------------------------------------------------------------- active thrombosis


@pytest.mark.parametrize(("days", "severity"), [(180, "contraindicated"),
                                                (181, "physician-review")])
def test_active_thrombosis_window(days: int, severity: str) -> None:
    a = screen(condition("I26.99", ICD10CM, onset=days_before(days)))
    assert outcome(a, "active-thrombosis") == ("present", severity)


def test_chronic_dvt_is_risk_not_active() -> None:
    a = screen(condition("I82.501", ICD10CM, onset="2019-01-01"))
    assert outcome(a, "active-thrombosis")[0] == "absent"
    assert outcome(a, "thrombotic-risk") == ("present", "physician-review")


def test_resolved_pe_is_lifelong_risk() -> None:
    a = screen(condition("59282003", onset="2015-01-01", abatement="2015-06-01",
                         clinical="resolved"))
    assert outcome(a, "active-thrombosis")[0] == "absent"
    assert outcome(a, "thrombotic-risk") == ("present", "physician-review")


# ---------------------------------------------------------------------------- thrombotic risk


@pytest.mark.parametrize("code", ["D68.51", "D68.61", "D68.62", "Z86.718", "N18.4", "Z79.01"])
def test_thrombotic_risk_conditions(code: str) -> None:
    a = screen(condition(code, ICD10CM, onset="2020-01-01"))
    assert outcome(a, "thrombotic-risk") == ("present", "physician-review")


def test_other_coagulation_defect_is_not_thrombophilia() -> None:
    a = screen(condition("D68.4", ICD10CM, onset="2020-01-01"))  # acquired factor deficiency
    assert outcome(a, "thrombotic-risk")[0] == "absent"


def test_anticoagulant_current_vs_stopped() -> None:
    on = screen(medication_request("855332", RXNORM, authored=days_before(400)))  # warfarin
    assert outcome(on, "thrombotic-risk")[0] == "present"
    by_text = screen(medication_request(None, text="Apixaban 5 MG Oral Tablet",
                                        authored=days_before(10)))
    assert outcome(by_text, "thrombotic-risk")[0] == "present"
    off = screen(medication_request("855332", RXNORM, authored=days_before(400),
                                    status="completed"))
    assert outcome(off, "thrombotic-risk")[0] == "absent"


# -------------------------------------------------------------------- product hypersensitivity


@pytest.mark.parametrize("text", ["DMSO", "Dimethyl sulfoxide", "Bovine serum albumin",
                                  "Porcine products", "Alpha-gal syndrome"])
def test_product_allergens_by_text(text: str) -> None:
    a = screen(allergy(text=text, recorded="2020-01-01"))
    assert outcome(a, "product-hypersensitivity") == ("present", "contraindicated")


def test_product_allergen_by_code() -> None:
    a = screen(allergy("3455", RXNORM, recorded="2020-01-01"))
    assert outcome(a, "product-hypersensitivity") == ("present", "contraindicated")


def test_cross_reacting_allergy_is_review_and_unrelated_is_absent() -> None:
    dairy = screen(allergy("425525006", recorded="2020-01-01"))  # Synthea dairy allergy
    assert outcome(dairy, "product-hypersensitivity") == ("present", "physician-review")
    gelatin = screen(allergy(text="Gelatin", recorded="2020-01-01"))
    assert outcome(gelatin, "product-hypersensitivity") == ("present", "physician-review")
    peanut = screen(allergy("91935009", recorded="2020-01-01"))
    assert outcome(peanut, "product-hypersensitivity")[0] == "absent"


def test_allergy_status_handling() -> None:
    resolved = screen(allergy(text="DMSO", clinical="resolved"))
    assert outcome(resolved, "product-hypersensitivity")[0] == "absent"
    refuted = screen(allergy(text="DMSO", verification="refuted"))
    assert outcome(refuted, "product-hypersensitivity")[0] == "absent"
    unconfirmed = screen(allergy(text="DMSO", verification="unconfirmed"))
    assert outcome(unconfirmed, "product-hypersensitivity") == ("present", "physician-review")


@pytest.mark.parametrize(("days", "status"), [(90, "present"), (91, "absent")])
def test_cardiac_arrest_is_an_event_counted_within_the_window(days: int, status: str) -> None:
    # Synthea leaves "Cardiac Arrest" active for years: only a recent one counts
    a = screen(condition("410429000", onset=days_before(days)))
    assert outcome(a, "severe-cardiovascular-disease")[0] == status


@pytest.mark.parametrize(("code", "active"), [
    ("I80.10", "present"), ("I82.220", "present"), ("I82.62", "present"),
    ("I80.00", "absent"),  # superficial thrombophlebitis: risk, not an active DVT
    ("I82.221", "absent"), ("I82.91", "absent"),  # chronic
])
def test_acute_versus_chronic_or_superficial_clots(code: str, active: str) -> None:
    a = screen(condition(code, ICD10CM, onset=days_before(10)))
    assert outcome(a, "active-thrombosis")[0] == active
    assert outcome(a, "thrombotic-risk")[0] == "present"
