"""Policies change outcomes exactly as their descriptions say."""

from __future__ import annotations

import pytest

from factories import (
    ICD10CM,
    LOINC,
    condition,
    days_before,
    observation,
    outcome,
    patient,
    procedure,
    screen,
)
from msc_screen.knowledge import get_ruleset

MAN = patient(gender="male", birth_date="1970-01-01")


def test_every_shipped_policy_compiles_all_rules() -> None:
    default = get_ruleset()
    ids = [r.id for r in default.rules]
    assert len(ids) == 18
    for name in ("history-5y", "acute-mi-28d", "conservative"):
        rs = get_ruleset(name)
        assert [r.id for r in rs.rules] == ids
        assert rs.policy_info["name"] == name


@pytest.mark.parametrize(("policy", "days", "status"), [
    (None, 29, "present"), (None, 90, "present"), (None, 91, "absent"),
    ("acute-mi-28d", 28, "present"), ("acute-mi-28d", 29, "absent"),
    ("conservative", 365, "present"), ("conservative", 366, "absent"),
])
def test_mi_window_by_policy(policy: str | None, days: int, status: str) -> None:
    a = screen(condition("I21.4", ICD10CM, onset=days_before(days)), pat=MAN, policy=policy)
    assert outcome(a, "recent-myocardial-infarction")[0] == status


@pytest.mark.parametrize(("policy", "days", "status"), [
    (None, 3000, "present"),  # the article: any history of cancer
    ("history-5y", 1825, "present"), ("history-5y", 1826, "absent"),
])
def test_cancer_lookback_by_policy(policy: str | None, days: int, status: str) -> None:
    a = screen(condition("C61", ICD10CM, onset="2000-01-01", abatement=days_before(days),
                         clinical="resolved"), pat=MAN, policy=policy)
    assert outcome(a, "history-of-malignancy")[0] == status


def test_conservative_raises_thrombotic_risk_to_contraindicated() -> None:
    ckd = condition("N18.3", ICD10CM, onset="2015-01-01")
    assert outcome(screen(ckd, pat=MAN), "thrombotic-risk") == ("present", "physician-review")
    a = screen(ckd, pat=MAN, policy="conservative")
    assert outcome(a, "thrombotic-risk") == ("present", "contraindicated")
    assert a.decision == "contraindicated"


def test_conservative_lengthens_treatment_and_infection_windows() -> None:
    chemo = procedure("367336001", performed=days_before(300))
    assert outcome(screen(chemo, pat=MAN), "active-malignancy")[0] == "absent"
    assert outcome(screen(chemo, pat=MAN, policy="conservative"),
                   "active-malignancy")[0] == "present"
    pneu = condition("233604007", onset=days_before(150))
    assert outcome(screen(pneu, pat=MAN), "active-infection") == ("present", "physician-review")
    assert outcome(screen(pneu, pat=MAN, policy="conservative"),
                   "active-infection") == ("present", "contraindicated")


@pytest.mark.parametrize(("policy", "status"), [(None, "absent"), ("conservative", "present")])
def test_conservative_panel_window(policy: str | None, status: str) -> None:
    a = screen(observation("2857-1", LOINC, effective=days_before(120), value=1.0), pat=MAN,
               policy=policy)
    assert outcome(a, "tumour-marker-panel-due")[0] == status


def test_policy_from_a_yaml_file(tmp_path: object) -> None:
    from pathlib import Path

    p = Path(str(tmp_path)) / "site.yaml"
    p.write_text("name: site\ntitle: Site policy\ndescription: Turns off the tumour-marker "
                 "recommendation for this site.\nrules:\n  tumour-marker-panel-due:\n"
                 "    enabled: false\n", encoding="utf-8")
    rs = get_ruleset(str(p))
    assert "tumour-marker-panel-due" not in [r.id for r in rs.rules]
    a = screen(pat=MAN, policy=str(p))
    assert all(f.rule != "tumour-marker-panel-due" for f in a.findings)


@pytest.fixture(scope="module")
def lookback_policy(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A site policy giving the rules whose look-back defaults to 'any time' a finite one."""
    p = tmp_path_factory.mktemp("policy") / "site-lookbacks.yaml"
    p.write_text(
        "name: site-lookbacks\ntitle: Site look-backs\n"
        "description: Test policy with one-year look-backs for tests and tumour markers.\n"
        "rules:\n"
        "  chronic-viral-infection:\n    parameters:\n      test_lookback_days: 365\n"
        "  elevated-tumour-marker:\n    parameters:\n      lookback_days: 365\n",
        encoding="utf-8")
    return str(p)


@pytest.mark.parametrize(("days", "status"), [(365, "present"), (366, "absent")])
def test_hiv_test_lookback_edges(lookback_policy: str, days: int, status: str) -> None:
    a = screen(observation("55277-8", effective=days_before(days), value_string="HIV positive"),
               pat=MAN, policy=lookback_policy)
    assert outcome(a, "chronic-viral-infection")[0] == status
    # the default policy looks back any time
    assert outcome(screen(observation("55277-8", effective=days_before(days),
                                      value_string="HIV positive"), pat=MAN),
                   "chronic-viral-infection")[0] == "present"


@pytest.mark.parametrize(("days", "status"), [(365, "present"), (366, "absent")])
def test_marker_lookback_edges(lookback_policy: str, days: int, status: str) -> None:
    a = screen(observation("2857-1", effective=days_before(days), value=8.0), pat=MAN,
               policy=lookback_policy)
    assert outcome(a, "elevated-tumour-marker")[0] == status


@pytest.mark.parametrize(("birth", "status"), [("2006-06-01", "present"),
                                               ("2006-06-02", "absent")])
def test_panel_min_age_edges(birth: str, status: str) -> None:
    a = screen(pat=patient(gender="male", birth_date=birth))
    assert outcome(a, "tumour-marker-panel-due")[0] == status
