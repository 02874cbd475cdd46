"""Missing data is never reassurance (issue 12): every assessment says which kinds of data it
was given; a rule with none of the data it needs is unknown, a record with no clinical data is
needs-information, an unanswered question is "not answered"."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import msc_screen
from factories import ICD10CM, condition, days_before, finding, questionnaire_response
from factories import screen as chart
from msc_screen.engine.coverage import complete_kinds
from msc_screen.knowledge import get_ruleset
from msc_screen.knowledge.lint import lint_kb
from msc_screen.knowledge.loader import load_knowledge_base, package_root
from msc_screen.model import KindCoverage

from .test_properties import AS_OF, SETTINGS, patients

PATIENT = {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1970-01-01"}
DAY = dt.date(2026, 1, 1)


def test_a_record_with_only_a_patient_is_needs_information() -> None:
    a = msc_screen.screen([PATIENT], as_of=DAY)
    assert a.decision == "needs-information"
    data = finding(a, "data-coverage")
    assert (data.status, data.severity) == ("present", "needs-information")
    assert "conditions not provided" in (data.evidence[0].detail or "")
    mal = finding(a, "active-malignancy")
    assert mal.status == "unknown"
    assert "not enough data" in mal.summary and "conditions not provided" in mal.summary
    cov = a.to_dict()["coverage"]
    assert cov["demographics"] == {"status": "provided", "count": 1}
    assert cov["conditions"] == {"status": "not-provided", "count": 0}
    assert not any(k.startswith("answer:") for k in cov)  # no questionnaire: not listed


def test_absent_needs_every_kind_of_an_alternative() -> None:
    """A problem list alone cannot rule out cancer treatment recorded as a medication or a
    procedure: active-malignancy stays unknown until those were provided too."""
    only_conditions = msc_screen.screen(
        [PATIENT, condition("I10", ICD10CM, onset="2020-01-01") | {"subject": {
            "reference": "Patient/p"}}], as_of=DAY)
    mal = finding(only_conditions, "active-malignancy")
    assert mal.status == "unknown"
    assert "medications not provided" in mal.summary
    assert finding(only_conditions, "active-infection").status == "absent"  # conditions suffice
    complete = msc_screen.screen([PATIENT, condition("I10", ICD10CM, onset="2020-01-01") | {
        "subject": {"reference": "Patient/p"}}], as_of=DAY,
        complete="conditions,medications,procedures")
    assert finding(complete, "active-malignancy").status == "absent"
    assert complete.coverage["medications"] == KindCoverage("provided", "declared complete", 0)


def test_declared_complete_export_is_decided() -> None:
    a = msc_screen.screen([PATIENT], as_of=DAY, complete="all")
    assert a.decision == "no-contraindication-found"
    assert finding(a, "data-coverage").status == "absent"
    assert a.coverage["questionnaire"].status == "not-provided"  # never part of an export


def test_incomplete_kind_is_named_and_never_reassures() -> None:
    records, _ = msc_screen.api.load_records([PATIENT])
    rec = records[0]
    rec.declared["conditions"] = KindCoverage("incomplete", "conditions: timeout")
    for k in complete_kinds(get_ruleset(), "all"):
        if k != "conditions":
            rec.declared[k] = KindCoverage("provided", "searched")
    a = msc_screen.screen_records([rec], as_of=DAY)[0]
    data = finding(a, "data-coverage")
    assert data.status == "present"
    assert "conditions incomplete (conditions: timeout)" in (data.evidence[0].detail or "")
    assert finding(a, "active-infection").status == "unknown"
    assert a.decision == "needs-information"
    # declaring the kind complete afterwards does not hide the failure
    msc_screen.api.declare_complete([rec], ("conditions",))
    assert rec.declared["conditions"].status == "incomplete"


def test_unanswered_optional_questions_are_not_answered_never_absent() -> None:
    """A questionnaire with its required answers and the optional ones left blank: the
    blank questions' rules are unknown ("not answered"), the answered ones absent."""
    answers = {"cancer-now": "no", "cancer-past": "no", "infection-now": "no",
               "heart-attack": "no", "heart-condition": "no", "immune-disorder": "no",
               "genetic-disorder": "no", "breastfeeding-now": "no", "pregnant-now": "no"}
    a = chart(questionnaire_response(answers), complete=None)
    assert finding(a, "active-malignancy").status == "absent"  # answered "no"
    clot = finding(a, "active-thrombosis")
    assert clot.status == "unknown"
    assert "question clot-now not answered" in clot.summary
    assert finding(a, "unstable-angina").status == "unknown"
    assert finding(a, "product-hypersensitivity").status == "unknown"
    assert a.coverage["answer:clot-now"] == KindCoverage("not-provided", "not answered")
    assert a.coverage["answer:cancer-now"].status == "provided"


def test_unknown_kind_in_complete_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown kind of data 'labs'"):
        complete_kinds(get_ruleset(), "conditions,labs")


def test_cli_patient_only_and_complete(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps(PATIENT))
    cmd = [sys.executable, "-m", "msc_screen", "screen", str(f), "--as-of", "2026-01-01",
           "--format", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["decision"] == "needs-information"
    assert out["coverage"]["conditions"]["status"] == "not-provided"
    r = subprocess.run([*cmd, "--complete", "all"], capture_output=True, text=True, check=False)
    assert json.loads(r.stdout)["decision"] == "no-contraindication-found"
    r = subprocess.run([*cmd, "--complete", "labs"], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "--complete: unknown kind of data 'labs'" in r.stderr
    assert "Traceback" not in r.stderr


def test_lint_refuses_a_kind_read_but_not_needed(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "kb"
    shutil.copytree(package_root(), root)
    p = root / "rules" / "thrombotic-risk.yaml"
    p.write_text(p.read_text().replace("  - [conditions, medications]\n", "  - [conditions]\n"))
    found = [f for f in lint_kb(load_knowledge_base(root)) if f.check == "needs"]
    assert any("'medications'" in f.message and f.severity == "error" for f in found), found


# ------------------------------------------------------------------ the engine's invariant

KINDS = {"conditions": "Condition", "laboratory": "Observation",
         "medications": "MedicationRequest"}


@SETTINGS
@given(patients(), st.sampled_from(sorted(KINDS)))
def test_removing_a_kind_never_reassures(res: list[dict[str, Any]], kind: str) -> None:
    """Take a whole kind of data out of a complete chart and mark it not provided: no present
    or unknown finding becomes absent unless the rule says that kind is not needed (another
    rule reports the gap), and the decision never falls to no-contraindication-found."""
    rs = get_ruleset()
    everything = complete_kinds(rs, "all")
    base = msc_screen.screen(copy.deepcopy(res), as_of=AS_OF, complete=everything)
    rtype = KINDS[kind]
    kept = [r for r in copy.deepcopy(res) if r["resourceType"] != rtype]
    # the strategy's observations are pregnancy tests too
    gone = ("laboratory", "pregnancy-status") if kind == "laboratory" else (kind,)
    after = msc_screen.screen(kept, as_of=AS_OF,
                              complete=[k for k in everything if k not in gone])
    for k in gone:
        assert after.coverage[k].status == "not-provided"
    before = {f.rule: f.status for f in base.findings}
    now = {f.rule: f.status for f in after.findings}
    not_needed = {r.id: set(r.definition.not_needed) for r in rs.rules}

    def deferred(f: Any) -> bool:
        """Absent because another rule's finding, present or unknown, already reports it
        (pregnancy-status-unknown defers to an unknown pregnancy)."""
        return any(e.reference.startswith("rule/") and
                   now.get(e.reference[5:]) in ("present", "unknown") for e in f.evidence)

    for f in after.findings:
        if before[f.rule] in ("present", "unknown") and f.status == "absent":
            assert set(gone) & not_needed[f.rule] or deferred(f), (
                f.rule, before[f.rule], f.summary)
    if base.decision != "no-contraindication-found":
        assert after.decision != "no-contraindication-found" or all(
            set(gone) & not_needed[f.rule] for f in base.findings
            if f.status != "absent" and f.severity != "recommendation"), (
            base.decision, [(f.rule, f.status) for f in base.findings if f.status != "absent"])


def test_questionnaire_recorded_before_as_of_counts(tmp_path: Path) -> None:
    a = chart(questionnaire_response({"clot-now": "no"}, authored=days_before(3)), complete=None)
    assert a.coverage["answer:clot-now"].status == "provided"
