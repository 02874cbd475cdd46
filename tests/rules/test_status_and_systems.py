"""Status handling, uncertain data, records after the as-of date, and every spelling of a code
system, run through the shipped rules."""

from __future__ import annotations

import pytest

from factories import (
    AS_OF,
    ICD10CM,
    RXNORM,
    condition,
    days_before,
    finding,
    medication_request,
    observation,
    outcome,
    procedure,
    questionnaire_response,
    screen,
)

SEPSIS_SCT = "91302008"


@pytest.mark.parametrize("clinical", ["active", "recurrence", "relapse"])
def test_active_statuses_count(clinical: str) -> None:
    a = screen(condition("C34.90", ICD10CM, onset="2023-01-01", clinical=clinical))
    assert outcome(a, "active-malignancy") == ("present", "contraindicated")


@pytest.mark.parametrize("clinical", ["resolved", "remission", "inactive"])
def test_resolved_statuses_do_not_count_as_active(clinical: str) -> None:
    a = screen(condition("C34.90", ICD10CM, onset="2020-01-01", abatement="2021-01-01",
                         clinical=clinical))
    assert outcome(a, "active-malignancy")[0] == "absent"
    assert outcome(a, "history-of-malignancy")[0] == "present"


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_and_entered_in_error_are_ignored(verification: str) -> None:
    a = screen(condition(SEPSIS_SCT, onset=days_before(2), verification=verification))
    assert outcome(a, "active-infection")[0] == "absent"


@pytest.mark.parametrize("verification", ["unconfirmed", "provisional", "differential"])
def test_unconfirmed_diagnosis_gives_review_not_silence(verification: str) -> None:
    a = screen(condition(SEPSIS_SCT, onset=days_before(2), verification=verification))
    f = finding(a, "active-infection")
    assert (f.status, f.severity) == ("present", "physician-review")
    assert verification in f.summary
    assert a.decision == "physician-review"


def test_missing_onset_gives_review_with_reason() -> None:
    a = screen(condition(SEPSIS_SCT))
    f = finding(a, "active-infection")
    assert (f.status, f.severity) == ("present", "physician-review")
    assert "onset date missing" in f.summary
    assert any(e.uncertain for e in f.evidence)


def test_missing_clinical_status_treated_as_current_with_reason() -> None:
    a = screen(condition("C18.9", ICD10CM, onset="2023-01-01", clinical=None))
    f = finding(a, "active-malignancy")
    assert (f.status, f.severity) == ("present", "physician-review")
    assert "clinical status missing" in f.summary


def test_records_after_the_as_of_date_are_ignored() -> None:
    later = condition(SEPSIS_SCT, onset=AS_OF.replace(day=2))
    assert outcome(screen(later), "active-infection")[0] == "absent"
    hcg = observation("2106-3", effective=AS_OF.replace(day=3), interpretation="POS")
    assert outcome(screen(hcg), "pregnancy")[0] == "absent"


def test_abatement_after_the_as_of_date_means_still_current() -> None:
    a = screen(condition("72892002", onset=days_before(100), abatement=AS_OF.replace(month=9),
                         clinical="resolved"))
    assert outcome(a, "pregnancy")[0] == "present"


def test_lenient_partial_dates_for_concern() -> None:
    # onset "2024-03" could be as late as 31 March: within 90 days of 1 June -> counts
    a = screen(condition(SEPSIS_SCT, onset="2024-03"))
    assert outcome(a, "active-infection") == ("present", "contraindicated")


@pytest.mark.parametrize("system", [
    "http://snomed.info/sct",
    "https://snomed.info/sct",
    "urn:oid:2.16.840.1.113883.6.96",
    "http://snomed.info/sct/731000124108",  # US edition URI
    "http://snomed.info/sct/900000000000207008/version/20240301",
])
def test_snomed_spellings(system: str) -> None:
    a = screen(condition(SEPSIS_SCT, system, onset=days_before(2)))
    assert outcome(a, "active-infection") == ("present", "contraindicated")


@pytest.mark.parametrize(("code", "system"), [
    ("A41.9", "http://hl7.org/fhir/sid/icd-10-cm"),
    ("A419", "http://hl7.org/fhir/sid/icd-10-cm"),
    ("a41.9", "http://hl7.org/fhir/sid/icd-10-cm"),
    ("A41.9", "urn:oid:2.16.840.1.113883.6.90"),
    ("A41.9", "http://hl7.org/fhir/sid/icd-10"),  # WHO ICD-10 shares the category
])
def test_icd_spellings(code: str, system: str) -> None:
    a = screen(condition(code, system, onset=days_before(2)))
    assert outcome(a, "active-infection") == ("present", "contraindicated")


@pytest.mark.parametrize("system", ["http://loinc.org", "urn:oid:2.16.840.1.113883.6.1"])
def test_loinc_spellings(system: str) -> None:
    a = screen(observation("2106-3", system, effective=days_before(1), interpretation="POS"))
    assert outcome(a, "pregnancy")[0] == "present"


def test_unknown_system_does_not_match_by_code() -> None:
    a = screen(condition(SEPSIS_SCT, "http://example.org/local-codes", onset=days_before(2)))
    assert outcome(a, "active-infection")[0] == "absent"


def test_uncoded_condition_matches_by_text() -> None:
    a = screen(condition(None, text="Sepsis due to E. coli", onset=days_before(2)))
    assert outcome(a, "active-infection")[0] == "present"


def test_undated_treatment_is_review_with_reason() -> None:
    med = finding(screen(medication_request("1736854", RXNORM, status="completed")),
                  "active-malignancy")
    assert (med.status, med.severity) == ("present", "physician-review")
    assert "no date" in med.summary
    proc = finding(screen(procedure("703423002")), "active-malignancy")
    assert (proc.status, proc.severity) == ("present", "physician-review")


def test_cancelled_or_not_done_procedure_is_ignored() -> None:
    for status in ("not-done", "entered-in-error"):
        a = screen(procedure("703423002", performed=days_before(10), status=status))
        assert outcome(a, "active-malignancy")[0] == "absent"


def test_boolean_questionnaire_answer() -> None:
    a = screen(questionnaire_response({"breastfeeding-now": True}))
    assert outcome(a, "breastfeeding")[0] == "present"
