"""Pregnancy, breastfeeding and pregnancy-status-unknown: positive, negative, window edges."""

from __future__ import annotations

import pytest

from factories import (
    ICD10CM,
    LOINC,
    condition,
    days_before,
    finding,
    observation,
    outcome,
    patient,
    procedure,
    questionnaire_response,
    screen,
)

MAN = patient(gender="male", birth_date="1980-01-01")


# ------------------------------------------------------------------------------- pregnancy


def test_active_pregnancy_condition_is_contraindicated() -> None:
    a = screen(condition("72892002", onset=days_before(60)))
    assert outcome(a, "pregnancy") == ("present", "contraindicated")
    assert a.decision == "contraindicated"
    assert finding(a, "pregnancy").evidence[0].reference.startswith("Condition/")


def test_pregnancy_abated_by_delivery_is_absent() -> None:
    # Synthea writes normal pregnancies resolved, with abatement at delivery
    a = screen(condition("72892002", onset=days_before(300), abatement=days_before(30),
                         clinical="resolved"))
    assert outcome(a, "pregnancy")[0] == "absent"


def test_pregnancy_ended_by_later_childbirth_procedure() -> None:
    a = screen(condition("72892002", onset=days_before(300)),
               procedure("66348005", performed=days_before(20)))
    assert outcome(a, "pregnancy")[0] == "absent"


def test_pregnancy_icd_o_code_and_weeks_code() -> None:
    assert outcome(screen(condition("O26.851", ICD10CM, onset=days_before(10))),
                   "pregnancy")[0] == "present"
    assert outcome(screen(condition("Z3A.20", ICD10CM, onset=days_before(10))),
                   "pregnancy")[0] == "present"


def test_pregnancy_not_applicable_to_men() -> None:
    a = screen(condition("72892002", onset=days_before(10)), pat=MAN)
    assert outcome(a, "pregnancy")[0] == "absent"


@pytest.mark.parametrize(("days", "status"), [(14, "present"), (15, "absent")])
def test_positive_hcg_window_edges(days: int, status: str) -> None:
    a = screen(observation("2106-3", effective=days_before(days), interpretation="POS"))
    assert outcome(a, "pregnancy")[0] == status


def test_most_recent_hcg_wins() -> None:
    a = screen(observation("2118-8", effective=days_before(10), interpretation="POS"),
               observation("2118-8", effective=days_before(2), interpretation="NEG"))
    assert outcome(a, "pregnancy")[0] == "absent"


def test_pregnancy_questionnaire_yes_and_unsure() -> None:
    a = screen(questionnaire_response({"pregnant-now": "yes"}))
    assert outcome(a, "pregnancy") == ("present", "contraindicated")
    u = screen(questionnaire_response({"pregnant-now": "unsure"}))
    assert outcome(u, "pregnancy") == ("unknown", "needs-information")
    assert u.decision == "needs-information"


# --------------------------------------------------------------------------- breastfeeding


def test_breastfeeding_condition_snomed_and_icd() -> None:
    a = screen(condition("413712001", onset=days_before(40)))
    assert outcome(a, "breastfeeding") == ("present", "contraindicated")
    b = screen(condition("Z39.1", ICD10CM, onset=days_before(40)))
    assert outcome(b, "breastfeeding")[0] == "present"


def test_infant_breastfed_code_is_not_the_mother() -> None:
    a = screen(condition("169741004", onset=days_before(40)))
    assert outcome(a, "breastfeeding")[0] == "absent"


def test_breastfeeding_resolved_is_absent() -> None:
    a = screen(condition("413712001", onset=days_before(400), abatement=days_before(100),
                         clinical="resolved"))
    assert outcome(a, "breastfeeding")[0] == "absent"


@pytest.mark.parametrize(("days", "status"), [(30, "present"), (31, "absent")])
def test_breastfeeding_status_observation_window(days: int, status: str) -> None:
    a = screen(observation("63895-7", effective=days_before(days), value_code="413712001"))
    assert outcome(a, "breastfeeding")[0] == status


def test_breastfeeding_questionnaire() -> None:
    assert outcome(screen(questionnaire_response({"breastfeeding-now": "yes"})),
                   "breastfeeding")[0] == "present"
    assert outcome(screen(questionnaire_response({"breastfeeding-now": "no"})),
                   "breastfeeding")[0] == "absent"
    assert outcome(screen(questionnaire_response({"breastfeeding-now": "unsure"})),
                   "breastfeeding") == ("unknown", "needs-information")


# ---------------------------------------------------------------- pregnancy status unknown


def test_woman_of_childbearing_age_without_test_needs_information() -> None:
    a = screen()
    assert outcome(a, "pregnancy-status-unknown") == ("unknown", "needs-information")
    assert a.decision == "needs-information"
    f = finding(a, "pregnancy-status-unknown")
    assert f.actions and f.actions[0]["codes"][0]["code"] == "2118-8"


@pytest.mark.parametrize(("days", "status"), [(14, "absent"), (15, "unknown")])
def test_negative_test_window_edges(days: int, status: str) -> None:
    a = screen(observation("2106-3", effective=days_before(days), interpretation="NEG"))
    assert outcome(a, "pregnancy-status-unknown")[0] == status


def test_negative_coded_pregnancy_status() -> None:
    a = screen(observation("82810-3", LOINC, effective=days_before(3), value_code="60001007"))
    assert outcome(a, "pregnancy-status-unknown")[0] == "absent"


@pytest.mark.parametrize(("birth", "status"), [
    ("2012-06-01", "unknown"),  # 12 on the as-of date: min_age is inclusive
    ("2012-06-02", "absent"),   # 11, one day short of 12
    ("1969-06-01", "unknown"),  # 55: max_age is inclusive
    ("1968-06-01", "absent"),   # 56
])
def test_age_edges(birth: str, status: str) -> None:
    assert outcome(screen(pat=patient(birth_date=birth)), "pregnancy-status-unknown")[0] == status


def test_hysterectomy_or_menopause_rules_pregnancy_out() -> None:
    assert outcome(screen(procedure("236886002", performed="2010-01-01")),
                   "pregnancy-status-unknown")[0] == "absent"
    assert outcome(screen(condition("Z90.722", ICD10CM, onset="2015-01-01")),
                   "pregnancy-status-unknown")[0] == "absent"
    assert outcome(screen(condition("N95.1", ICD10CM, onset="2020-01-01")),
                   "pregnancy-status-unknown")[0] == "absent"


def test_pregnancy_present_means_status_known() -> None:
    a = screen(condition("72892002", onset=days_before(30)))
    assert outcome(a, "pregnancy-status-unknown")[0] == "absent"
    assert outcome(a, "pregnancy")[0] == "present"


def test_men_are_not_asked() -> None:
    assert outcome(screen(pat=MAN), "pregnancy-status-unknown")[0] == "absent"


def test_questionnaire_negative_test_date_and_cannot_become_pregnant() -> None:
    ok = screen(questionnaire_response({"pregnant-now": "no",
                                        "pregnancy-test-negative-date": days_before(14)}))
    assert outcome(ok, "pregnancy-status-unknown")[0] == "absent"
    old = screen(questionnaire_response({"pregnant-now": "no",
                                         "pregnancy-test-negative-date": days_before(15)}))
    assert outcome(old, "pregnancy-status-unknown")[0] == "unknown"
    meno = screen(questionnaire_response({"pregnant-now": "no",
                                          "cannot-become-pregnant": "menopause"}))
    assert outcome(meno, "pregnancy-status-unknown")[0] == "absent"


@pytest.mark.parametrize(("days", "status"), [(301, "present"), (302, "absent")])
def test_pregnancy_cannot_last_beyond_43_weeks(days: int, status: str) -> None:
    # Synthea leaves some pregnancies active for decades; they are not current pregnancies
    a = screen(condition("79586000", onset=days_before(days)))
    assert outcome(a, "pregnancy")[0] == status
    if status == "absent":  # a woman of child-bearing age is then asked for a test
        assert outcome(a, "pregnancy-status-unknown")[0] == "unknown"


def test_pregnancy_without_onset_is_review() -> None:
    a = screen(condition("77386006"))
    assert outcome(a, "pregnancy") == ("present", "physician-review")


@pytest.mark.parametrize(("text", "preg", "unknown"), [
    ("Positive", "present", "absent"),
    ("hCG detected", "present", "absent"),
    ("Negative", "absent", "absent"),
    ("not pregnant", "absent", "absent"),
    ("see comment", "absent", "unknown"),  # unreadable result: neither pregnant nor ruled out
])
def test_free_text_pregnancy_results(text: str, preg: str, unknown: str) -> None:
    a = screen(observation("2106-3", effective=days_before(2), value_string=text))
    assert outcome(a, "pregnancy")[0] == preg
    assert outcome(a, "pregnancy-status-unknown")[0] == unknown


@pytest.mark.parametrize("code", ["O03.9", "O80", "O90.89", "O94"])
def test_outcome_and_puerperium_codes_are_not_a_current_pregnancy(code: str) -> None:
    a = screen(condition(code, ICD10CM, onset=days_before(10)))
    assert outcome(a, "pregnancy")[0] == "absent"


def test_delivery_code_ends_an_open_pregnancy() -> None:
    a = screen(condition("O09.90", ICD10CM, onset=days_before(280)),
               condition("Z37.0", ICD10CM, onset=days_before(5)))
    assert outcome(a, "pregnancy")[0] == "absent"
