"""Active malignancy, history of malignancy, elevated tumour marker, tumour-marker panel due."""

from __future__ import annotations

import pytest

from factories import (
    ICD10CM,
    LOINC,
    RXNORM,
    condition,
    days_before,
    finding,
    medication_request,
    observation,
    outcome,
    patient,
    procedure,
    questionnaire_response,
    screen,
)

# ------------------------------------------------------------------------ active malignancy


@pytest.mark.parametrize(("code", "system"), [
    ("363406005", "http://snomed.info/sct"),  # colon cancer
    ("254637007", "http://snomed.info/sct"),  # NSCLC
    ("126906006", "http://snomed.info/sct"),  # neoplasm of prostate (Synthea's prostate cancer)
    ("92691004", "http://snomed.info/sct"),  # carcinoma in situ of prostate
    ("C50.911", ICD10CM), ("C18.9", ICD10CM), ("C96.9", ICD10CM), ("D05.10", ICD10CM),
])
def test_current_cancer_is_contraindicated(code: str, system: str) -> None:
    a = screen(condition(code, system, onset="2023-01-01"))
    assert outcome(a, "active-malignancy") == ("present", "contraindicated")
    assert a.decision == "contraindicated"


def test_benign_neoplasm_is_not_cancer() -> None:
    a = screen(condition("D12.6", ICD10CM, onset="2023-01-01"))  # benign neoplasm of colon
    assert outcome(a, "active-malignancy")[0] == "absent"
    assert outcome(a, "history-of-malignancy")[0] == "absent"


def test_suspected_cancer_is_review() -> None:
    a = screen(condition("162573006", onset=days_before(20)))
    assert outcome(a, "active-malignancy") == ("present", "physician-review")


@pytest.mark.parametrize(("days", "status"), [(180, "present"), (181, "absent")])
def test_chemotherapy_procedure_window(days: int, status: str) -> None:
    # Synthea's combined chemotherapy and radiation therapy
    a = screen(procedure("703423002", performed=days_before(days)),
               pat=patient(gender="male"))
    assert outcome(a, "active-malignancy")[0] == status


@pytest.mark.parametrize(("code", "days", "status"), [
    ("1736854", 180, "present"), ("1736854", 181, "absent"),  # cisplatin
    ("583214", 10, "present"), ("1860480", 10, "present"), ("1734340", 10, "present"),
])
def test_chemotherapy_medication_window(code: str, days: int, status: str) -> None:
    a = screen(medication_request(code, RXNORM, authored=days_before(days), status="stopped"))
    assert outcome(a, "active-malignancy")[0] == status


def test_cancer_in_remission_is_history_not_active() -> None:
    a = screen(condition("C18.9", ICD10CM, onset="2015-01-01", clinical="remission",
                         abatement="2016-01-01"))
    assert outcome(a, "active-malignancy")[0] == "absent"
    assert outcome(a, "history-of-malignancy") == ("present", "contraindicated")


def test_cancer_questionnaire() -> None:
    assert outcome(screen(questionnaire_response({"cancer-now": "yes"})),
                   "active-malignancy") == ("present", "contraindicated")
    assert outcome(screen(questionnaire_response({"cancer-now": "unsure"})),
                   "active-malignancy") == ("unknown", "needs-information")


# ---------------------------------------------------------------------- history of malignancy


def test_personal_history_code_counts_in_default_policy() -> None:
    a = screen(condition("Z85.038", ICD10CM, onset="2001-01-01"))
    assert outcome(a, "history-of-malignancy") == ("present", "contraindicated")


def test_resolved_synthea_colon_cancer_counts_at_any_age() -> None:
    a = screen(condition("363406005", onset="1990-01-01", abatement="1991-06-01",
                         clinical="resolved"))
    assert outcome(a, "history-of-malignancy")[0] == "present"


@pytest.mark.parametrize(("days", "status"), [(1825, "present"), (1826, "absent")])
def test_five_year_lookback_edges(days: int, status: str) -> None:
    a = screen(condition("C50.912", ICD10CM, onset="2010-01-01",
                         abatement=days_before(days), clinical="resolved"),
               policy="history-5y")
    assert outcome(a, "history-of-malignancy")[0] == status


@pytest.mark.parametrize(("days", "status"), [(1825, "present"), (1826, "absent")])
def test_five_year_lookback_on_history_code(days: int, status: str) -> None:
    # a Z85 code is recorded after the cancer ended: recorded before the look-back -> outside it
    a = screen(condition("Z85.3", ICD10CM, onset=days_before(days)), policy="history-5y")
    assert outcome(a, "history-of-malignancy")[0] == status


def test_lookback_with_missing_resolution_date_is_review_with_reason() -> None:
    a = screen(condition("C50.912", ICD10CM, onset="2010-01-01", clinical="resolved"),
               policy="history-5y")
    f = finding(a, "history-of-malignancy")
    assert (f.status, f.severity) == ("present", "physician-review")
    assert "date" in f.summary


def test_non_melanoma_skin_cancer_exempt_only_in_history_5y() -> None:
    bcc = condition("C44.311", ICD10CM, onset="2022-01-01", abatement="2022-03-01",
                    clinical="resolved")
    assert outcome(screen(bcc), "history-of-malignancy")[0] == "present"
    assert outcome(screen(bcc, policy="history-5y"), "history-of-malignancy")[0] == "absent"
    hist = condition("Z85.828", ICD10CM, onset="2022-03-01")
    assert outcome(screen(hist, policy="history-5y"), "history-of-malignancy")[0] == "absent"


def test_melanoma_is_not_exempt() -> None:
    mel = condition("C43.9", ICD10CM, onset="2022-01-01", abatement="2022-03-01",
                    clinical="resolved")
    assert outcome(screen(mel, policy="history-5y"), "history-of-malignancy")[0] == "present"


def test_history_questionnaire() -> None:
    yes = screen(questionnaire_response({"cancer-past": "yes"}))
    assert outcome(yes, "history-of-malignancy") == ("present", "physician-review")
    dated = screen(questionnaire_response({"cancer-past": "yes",
                                           "cancer-past-year": days_before(1826)}),
                   policy="history-5y")
    assert outcome(dated, "history-of-malignancy") == ("present", "physician-review")
    recent = screen(questionnaire_response({"cancer-past": "yes",
                                            "cancer-past-year": days_before(1825)}),
                    policy="history-5y")
    assert outcome(recent, "history-of-malignancy") == ("present", "contraindicated")


# ------------------------------------------------------------------------ elevated tumour marker


@pytest.mark.parametrize(("code", "value", "status"), [
    ("2857-1", 4.1, "present"), ("2857-1", 4.0, "absent"),  # PSA default limit 4.0 ng/mL
    ("2039-6", 5.1, "present"), ("2039-6", 5.0, "absent"),  # CEA 5.0 ng/mL
    ("10334-1", 36, "present"), ("10334-1", 35, "absent"),  # CA-125 35 U/mL
    ("24108-3", 38, "present"), ("1834-1", 11, "present"), ("6875-9", 31, "present"),
])
def test_default_upper_limits_when_no_reference_range(code: str, value: float,
                                                      status: str) -> None:
    a = screen(observation(code, effective=days_before(30), value=value),
               pat=patient(gender="male"))
    assert outcome(a, "elevated-tumour-marker")[0] == status
    if status == "present":
        assert outcome(a, "elevated-tumour-marker")[1] == "physician-review"


def test_reference_range_overrides_default_limit() -> None:
    a = screen(observation("2857-1", effective=days_before(30), value=3.0, ref_high=2.5),
               pat=patient(gender="male"))
    assert outcome(a, "elevated-tumour-marker")[0] == "present"
    b = screen(observation("2857-1", effective=days_before(30), value=5.0, ref_high=6.5),
               pat=patient(gender="male"))
    assert outcome(b, "elevated-tumour-marker")[0] == "absent"


def test_most_recent_marker_result_decides() -> None:
    a = screen(observation("2857-1", effective=days_before(300), value=9.0),
               observation("2857-1", effective=days_before(10), value=1.2),
               pat=patient(gender="male"))
    assert outcome(a, "elevated-tumour-marker")[0] == "absent"


def test_abnormal_tumour_marker_finding_code() -> None:
    a = screen(condition("R97.20", ICD10CM, onset=days_before(30)), pat=patient(gender="male"))
    assert outcome(a, "elevated-tumour-marker")[0] == "present"


# ------------------------------------------------------------------------ panel recommendation


@pytest.mark.parametrize(("days", "status"), [(180, "absent"), (181, "present")])
def test_panel_window_edges(days: int, status: str) -> None:
    a = screen(observation("2039-6", LOINC, effective=days_before(days), value=1.0))
    f = finding(a, "tumour-marker-panel-due")
    assert f.status == status
    assert f.severity == "recommendation"


def test_panel_recommendation_never_changes_the_decision() -> None:
    a = screen(observation("2106-3", effective=days_before(2), interpretation="NEG"))
    f = finding(a, "tumour-marker-panel-due")
    assert f.status == "present"
    assert a.decision == "no-contraindication-found"
    codes = {c["code"] for c in f.actions[0]["codes"]}
    assert codes == {"2039-6", "1834-1", "10334-1", "24108-3", "2857-1", "6875-9"}


def test_panel_not_suggested_to_minors_or_with_known_cancer() -> None:
    child = screen(pat=patient(birth_date="2010-01-01"))
    assert finding(child, "tumour-marker-panel-due").status == "absent"
    cancer = screen(condition("C18.9", ICD10CM, onset="2024-01-01"))
    assert finding(cancer, "tumour-marker-panel-due").status == "absent"


def test_results_tied_on_date_are_all_considered_in_any_order() -> None:
    high = observation("2857-1", effective=days_before(10), value=9.0)
    normal = observation("2857-1", effective=days_before(10), value=1.0)
    for order in ((high, normal), (normal, high)):
        a = screen(*order, pat=patient(gender="male"))
        assert outcome(a, "elevated-tumour-marker")[0] == "present"
