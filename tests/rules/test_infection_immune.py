"""Active infection, chronic viral infection, immune disorder, genetic marrow/immune disorder."""

from __future__ import annotations

import pytest

from factories import (
    ICD10CM,
    RXNORM,
    condition,
    days_before,
    finding,
    medication_request,
    observation,
    outcome,
    questionnaire_response,
    screen,
)

# ------------------------------------------------------------------------- active infection


@pytest.mark.parametrize(("code", "system"), [
    ("91302008", "http://snomed.info/sct"),  # sepsis
    ("233604007", "http://snomed.info/sct"),  # pneumonia
    ("A41.9", ICD10CM),  # sepsis, unspecified organism
    ("R65.21", ICD10CM),  # severe sepsis with septic shock
    ("A15.0", ICD10CM),  # tuberculosis of lung
    ("N10", ICD10CM),  # acute pyelonephritis
    ("L03.115", ICD10CM),  # cellulitis of right lower limb
    ("M86.10", ICD10CM),  # other acute osteomyelitis
    ("I33.0", ICD10CM),  # acute and subacute infective endocarditis
    ("G00.9", ICD10CM),  # bacterial meningitis
    ("R78.81", ICD10CM),  # bacteremia
    ("U07.1", ICD10CM),  # COVID-19
])
def test_systemic_infections_are_contraindicated(code: str, system: str) -> None:
    a = screen(condition(code, system, onset=days_before(5)))
    assert outcome(a, "active-infection") == ("present", "contraindicated")


@pytest.mark.parametrize(("days", "severity"), [(90, "contraindicated"),
                                                (91, "physician-review")])
def test_infection_window_edges(days: int, severity: str) -> None:
    # inside the window: active; beyond it, still recorded as current: review (stale record)
    a = screen(condition("233604007", onset=days_before(days)))
    assert outcome(a, "active-infection") == ("present", severity)


def test_resolved_infection_is_absent() -> None:
    a = screen(condition("233604007", onset=days_before(30), abatement=days_before(10),
                         clinical="resolved"))
    assert outcome(a, "active-infection")[0] == "absent"


def test_local_infection_is_review_and_old_local_is_absent() -> None:
    a = screen(condition("38822007", onset=days_before(4)))  # cystitis
    assert outcome(a, "active-infection") == ("present", "physician-review")
    b = screen(condition("N39.0", ICD10CM, onset=days_before(91)))
    assert outcome(b, "active-infection")[0] == "absent"


def test_chronic_sinusitis_is_not_an_active_infection() -> None:
    a = screen(condition("40055000", onset="2010-01-01"))
    assert outcome(a, "active-infection")[0] == "absent"


def test_infection_questionnaire() -> None:
    yes = screen(questionnaire_response({"infection-now": "yes"}))
    assert outcome(yes, "active-infection") == ("present", "physician-review")
    unsure = screen(questionnaire_response({"infection-now": "unsure"}))
    assert outcome(unsure, "active-infection") == ("unknown", "needs-information")
    no = screen(questionnaire_response({"infection-now": "no"}))
    assert outcome(no, "active-infection")[0] == "absent"


# ------------------------------------------------------------------- chronic viral infection


@pytest.mark.parametrize(("code", "system"), [
    ("B20", ICD10CM), ("Z21", ICD10CM), ("B18.1", ICD10CM), ("B18.2", ICD10CM),
    ("86406008", "http://snomed.info/sct"),
])
def test_chronic_viral_infection_is_review(code: str, system: str) -> None:
    a = screen(condition(code, system, onset="2015-01-01"))
    assert outcome(a, "chronic-viral-infection") == ("present", "physician-review")
    assert a.decision == "physician-review"


def test_acute_hepatitis_b_is_not_chronic() -> None:
    a = screen(condition("B16.9", ICD10CM, onset=days_before(10)))
    assert outcome(a, "chronic-viral-infection")[0] == "absent"


def test_positive_hiv_test_and_most_recent_negative() -> None:
    pos = screen(observation("55277-8", effective="2020-01-01", value_code="165816005"))
    assert outcome(pos, "chronic-viral-infection")[0] == "present"
    neg_later = screen(observation("5196-1", effective="2020-01-01", interpretation="POS"),
                       observation("5196-1", effective="2023-01-01", interpretation="NEG"))
    assert outcome(neg_later, "chronic-viral-infection")[0] == "absent"


# -------------------------------------------------------------------------- immune disorder


@pytest.mark.parametrize(("code", "system"), [
    ("55464009", "http://snomed.info/sct"),  # SLE
    ("69896004", "http://snomed.info/sct"),  # RA
    ("M32.14", ICD10CM),  # SLE glomerular disease
    ("M05.79", ICD10CM),  # RA with rheumatoid factor
    ("D84.9", ICD10CM),  # immunodeficiency, unspecified
    ("K50.90", ICD10CM),  # Crohn's
    ("Z79.624", ICD10CM),  # long-term inhibitors of nucleotide synthesis
    ("Z94.0", ICD10CM),  # kidney transplant status
])
def test_immune_disorders_are_review(code: str, system: str) -> None:
    a = screen(condition(code, system, onset="2018-01-01"))
    assert outcome(a, "immune-disorder") == ("present", "physician-review")


def test_immunosuppressant_medication_by_code_and_text() -> None:
    a = screen(medication_request("42316", RXNORM, authored=days_before(30)))
    assert outcome(a, "immune-disorder")[0] == "present"
    # a locally coded record is matched by the words of its text
    b = screen(medication_request("MMF500", "http://example.org/formulary",
                                  authored=days_before(30),
                                  text="Mycophenolate mofetil 500 MG Oral Tablet"))
    assert outcome(b, "immune-disorder")[0] == "present"
    # a product code no value set lists is still read by the ingredient its text names, and
    # the evidence says so
    c = screen(medication_request("999999", RXNORM, authored=days_before(30),
                                  text="Mycophenolate mofetil 500 MG Oral Tablet"))
    assert outcome(c, "immune-disorder") == ("present", "physician-review")
    ev = next(f for f in c.findings if f.rule == "immune-disorder").evidence[0]
    assert ev.detail is not None and "ingredient «mycophenolate»" in ev.detail
    stopped = screen(medication_request("42316", RXNORM, authored=days_before(300),
                                        status="stopped"))
    assert outcome(stopped, "immune-disorder")[0] == "absent"


def test_genetic_immunodeficiency_reported_once_by_the_genetic_rule() -> None:
    a = screen(condition("D81.1", ICD10CM, onset="2000-01-01"))  # SCID, low T & B
    assert outcome(a, "genetic-marrow-immune-disorder") == ("present", "physician-review")
    assert outcome(a, "immune-disorder")[0] == "absent"


def test_immune_questionnaire_unsure() -> None:
    a = screen(questionnaire_response({"immune-disorder": "unsure"}))
    assert outcome(a, "immune-disorder") == ("unknown", "needs-information")


# ---------------------------------------------------------- genetic marrow / immune disorder


@pytest.mark.parametrize("code", ["D61.03", "D61.09", "D61.01", "D61.02", "D82.0", "D82.1",
                                  "D71", "Z15.01", "D57.1"])
def test_genetic_disorders_are_lifelong_review(code: str) -> None:
    # lifelong: even recorded as resolved it counts
    a = screen(condition(code, ICD10CM, onset="1990-01-01", abatement="2000-01-01",
                         clinical="resolved"))
    assert outcome(a, "genetic-marrow-immune-disorder") == ("present", "physician-review")


def test_sickle_cell_trait_is_not_a_disorder() -> None:
    a = screen(condition("D57.3", ICD10CM, onset="1990-01-01"))
    assert outcome(a, "genetic-marrow-immune-disorder")[0] == "absent"


def test_genetic_questionnaire() -> None:
    a = screen(questionnaire_response({"genetic-disorder": "yes"}))
    assert outcome(a, "genetic-marrow-immune-disorder")[0] == "present"
    assert finding(a, "genetic-marrow-immune-disorder").evidence[0].source == "questionnaire"


@pytest.mark.parametrize(("text", "status"), [
    ("HIV positive", "present"),  # as Synthea writes it
    ("not HIV positive", "absent"),
    ("Positive", "present"),
    ("Negative", "absent"),
    ("Non-reactive", "absent"),
])
def test_free_text_hiv_status(text: str, status: str) -> None:
    a = screen(observation("55277-8", effective="2019-01-01", value_string=text))
    assert outcome(a, "chronic-viral-infection")[0] == status
