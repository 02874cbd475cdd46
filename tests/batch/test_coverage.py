"""Data coverage in the batch: a record without clinical data is needs-information in every
output (assessments, summary, report), ``--complete`` declares kinds complete for every patient
(Bundles and NDJSON alike), and the option is part of the run's identity for ``--resume``."""

from __future__ import annotations

import csv
import html
import io
import re
import signal

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from msc_screen.batch import BatchOptions, OptionError, ResumeError, run_batch
from msc_screen.batch.runner import declared_kinds
from msc_screen.batch.stats import Stats, coverage_gaps
from msc_screen.cli import app
from msc_screen.knowledge import get_ruleset
from msc_screen.model import KindCoverage
from msc_screen.render.report import COVERAGE_TOP, coverage_table

from .conftest import AS_OF, LONE_BUNDLE, LONE_NDJSON, PATIENTS, batch, outputs
from .test_resume import _cli

CLINICAL = ("conditions", "medications", "procedures", "allergies", "laboratory",
            "pregnancy-status", "documents")
NOTHING = ",".join((*CLINICAL, "questionnaire"))  # a record holding a Patient alone


def _assessments(data: bytes) -> dict[str, dict]:
    return {a["patient"]["id"]: a for a in map(orjson.loads, data.splitlines())}


def _summary(data: bytes) -> dict[str, dict[str, str]]:
    return {r["patient_id"]: r for r in csv.DictReader(io.StringIO(data.decode()))}


def _coverage_rows(report: bytes) -> dict[str, list[str]]:
    """The report's coverage table: pattern -> its cells (patients, share, decisions...)."""
    text = report.decode()
    table = re.search(r'<table class="coverage">(.*?)</table>', text, re.S)
    assert table is not None, "no coverage table in the report"
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)[1:]:
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        rows[cells[0]] = cells[1:]
    return rows


def _headers(report: bytes) -> list[str]:
    table = re.search(r'<table class="coverage">(.*?)</table>', report.decode(), re.S)
    assert table is not None
    first = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)[0]
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<th[^>]*>(.*?)</th>", first, re.S)]


def test_patient_only_records_are_needs_information_in_every_output(lone, tmp_path):
    out = batch(lone, tmp_path / "o")
    assessments = _assessments(out["assessments.ndjson"])
    summary = _summary(out["summary.csv"])
    parquet = {r["patient_id"]: r for r in
               pq.read_table(io.BytesIO(out["summary.parquet"])).to_pylist()}
    assert len(assessments) == PATIENTS + 2
    for pid in (LONE_BUNDLE, LONE_NDJSON):
        a = assessments[pid]
        assert a["decision"] == "needs-information"
        assert {k: v["status"] for k, v in a["coverage"].items()} == {
            **dict.fromkeys((*CLINICAL, "questionnaire"), "not-provided"),
            "demographics": "provided"}
        statuses = {f["rule"]: f["status"] for f in a["findings"]}
        assert statuses["data-coverage"] == "present"
        assert {statuses[r] for r in ("active-malignancy", "active-infection",
                                      "product-hypersensitivity")} == {"unknown"}
        for row in (summary[pid], parquet[pid]):
            assert row["decision"] == "needs-information"
            assert row["data-coverage"] == "present"
            assert row["coverage_gaps"] == NOTHING
    # the report counts them in the coverage table, as needs-information for lack of data
    rows = _coverage_rows(out["report.html"])
    head = _headers(out["report.html"])
    cells = dict(zip(head[1:], rows[NOTHING], strict=True))
    assert cells["patients"] == "2"
    assert cells["needs-information"] == "2" and cells["of which only for lack of data"] == "2"
    assert cells["no-contraindication-found"] == "0"
    # the rows are the most common patterns of summary.csv, most common first
    by_pattern: dict[str, int] = {}
    for r in summary.values():
        by_pattern[r["coverage_gaps"]] = by_pattern.get(r["coverage_gaps"], 0) + 1
    top = sorted(by_pattern.items(), key=lambda kv: (-kv[1], kv[0]))[:COVERAGE_TOP]
    assert [(k, int(v[0])) for k, v in rows.items()] == top
    assert len(by_pattern) > COVERAGE_TOP  # this population has more than the table shows
    assert re.search(rf"most common of\s+{len(by_pattern)} patterns", out["report.html"].decode())


def test_complete_all_declares_every_exported_kind_for_bundles_and_ndjson(lone, tmp_path):
    default = run_batch(BatchOptions([str(p) for p in lone], AS_OF, tmp_path / "d"))
    full = run_batch(BatchOptions([str(p) for p in lone], AS_OF, tmp_path / "f",
                                  complete="all"))
    out = outputs(tmp_path / "f")
    assessments = _assessments(out["assessments.ndjson"])
    summary = _summary(out["summary.csv"])
    for pid in (LONE_BUNDLE, LONE_NDJSON):
        a = assessments[pid]
        assert a["decision"] == "no-contraindication-found"  # a man: no pregnancy to rule out
        assert {k for k, v in a["coverage"].items() if v["status"] != "provided"} == {
            "questionnaire"}  # the patient's own answers are never part of an export
        assert a["coverage"]["conditions"]["reason"] == "declared complete"
        assert summary[pid]["coverage_gaps"] == "questionnaire"
        assert summary[pid]["data-coverage"] == "absent"
    assert full.stats.coverage[(NOTHING, "needs-information")] == 0
    assert default.stats.coverage[(NOTHING, "needs-information")] == 2
    assert default.stats.data_only[NOTHING] == 2 and full.stats.data_only[NOTHING] == 0
    # every patient's clinical kinds are declared: only the questionnaire can be missing
    assert {r["coverage_gaps"] for r in summary.values()} <= {"questionnaire",
                                                             "questionnaire:unanswered"}
    assert sum(full.stats.data_only.values()) < sum(default.stats.data_only.values())
    assert "Declared complete for every patient" in out["report.html"].decode()


def test_complete_a_list_of_kinds_from_the_cli(lone, tmp_path):
    out = tmp_path / "o"
    r = CliRunner().invoke(app, ["batch", *map(str, lone), "--as-of", AS_OF.isoformat(),
                                 "--out", str(out), "--complete", "medications,conditions"])
    assert r.exit_code == 0, r.output
    row = _summary((out / "summary.csv").read_bytes())[LONE_BUNDLE]
    assert row["coverage_gaps"] == ",".join(k for k in NOTHING.split(",")
                                            if k not in ("conditions", "medications"))
    a = _assessments((out / "assessments.ndjson").read_bytes())[LONE_NDJSON]
    assert a["coverage"]["medications"] == {"status": "provided", "count": 0,
                                            "reason": "declared complete"}
    report = (out / "report.html").read_text()
    assert re.search(r"Declared complete</th><td[^>]*>conditions, medications<", report)


def test_an_unknown_kind_is_refused_clearly(population, tmp_path):
    r = CliRunner().invoke(app, ["batch", str(population["bundles"]), "--as-of",
                                 AS_OF.isoformat(), "--out", str(tmp_path / "o"),
                                 "--complete", "conditions,labs"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "--complete" in r.output and "'labs'" in r.output
    assert not (tmp_path / "o" / "assessments.ndjson").exists()
    with pytest.raises(OptionError):
        run_batch(BatchOptions([str(population["bundles"])], AS_OF, tmp_path / "p",
                               complete=["bogus"]))


def test_the_run_records_the_declared_kinds_in_knowledge_base_order():
    ruleset = get_ruleset()
    assert declared_kinds(ruleset, None) == ()
    assert declared_kinds(ruleset, "medications,conditions") == ("conditions", "medications")
    assert declared_kinds(ruleset, ["conditions", "medications"]) == (
        "conditions", "medications")
    assert declared_kinds(ruleset, "all") == (*CLINICAL, "demographics")  # not the questionnaire


def test_coverage_gaps_pattern():
    p, n, i = (KindCoverage("provided"), KindCoverage("not-provided"),
               KindCoverage("incomplete", "timeout"))
    assert coverage_gaps({"conditions": p, "medications": p}) == ""
    assert coverage_gaps({"conditions": n, "medications": i, "allergies": n,
                          "questionnaire": p, "answer:clot-now": n,
                          "answer:cancer-now": n}) == (
        "conditions,medications:incomplete,allergies,questionnaire:unanswered")
    assert coverage_gaps({"questionnaire": i, "answer:clot-now": i}) == (
        "questionnaire:incomplete")


def test_needs_information_for_lack_of_data_agrees_with_the_findings(lone, population,
                                                                     tmp_path):
    """The count of patients needs-information only because data was missing, checked
    against the findings themselves: every needs-information finding is the data-coverage rule
    or says "not enough data"."""
    inputs = [*lone, population["ndjson"]]
    result = run_batch(BatchOptions([str(p) for p in inputs], AS_OF, tmp_path / "o",
                                    workers=2))
    expected: dict[str, int] = {}
    summary = _summary((tmp_path / "o" / "summary.csv").read_bytes())
    seen_other = 0
    with (tmp_path / "o" / "assessments.ndjson").open("rb") as f:
        for line in f:
            a = orjson.loads(line)
            if a["decision"] != "needs-information":
                continue
            asking = [x for x in a["findings"] if x["status"] != "absent"
                      and x["severity"] == "needs-information"]
            if all(x["rule"] == "data-coverage" or "(not enough data:" in x["summary"]
                   for x in asking):
                gaps = summary[a["patient"]["id"]]["coverage_gaps"]
                expected[gaps] = expected.get(gaps, 0) + 1
            else:
                seen_other += 1
    assert seen_other > 0 and sum(expected.values()) > 2  # both kinds occur in this population
    assert dict(result.stats.data_only) == expected
    table = coverage_table(result.stats, get_ruleset(), {"complete": []})
    assert table["data_only"] == sum(expected.values())
    assert f"<strong>{table['data_only']:,}</strong> patient(s)" in (
        tmp_path / "o" / "report.html").read_text()


def test_report_lists_the_most_common_patterns_and_every_kind():
    """More patterns than the table shows: the most common first (ties by pattern), and the
    per-kind counts still count every pattern."""
    ruleset = get_ruleset()
    stats = Stats([(r.id, r.title) for r in ruleset.rules])
    patterns = {"": 3, "documents,questionnaire": 9, "conditions,documents": 4,
                "conditions,questionnaire:unanswered": 4, "documents:incomplete": 2,
                "conditions,medications:incomplete,laboratory": 7, "laboratory": 1}
    for pattern, n in patterns.items():
        stats.coverage[(pattern, "needs-information")] += n - 1
        stats.coverage[(pattern, "contraindicated")] += 1
        stats.data_only[pattern] += n // 2
        stats.total += n
    table = coverage_table(stats, ruleset, {"complete": ["conditions"]}, top=4)
    assert [(r["pattern"], r["patients"], r["data_only"]) for r in table["rows"]] == [
        ("documents,questionnaire", 9, 4), ("conditions,medications:incomplete,laboratory", 7, 3),
        ("conditions,documents", 4, 2), ("conditions,questionnaire:unanswered", 4, 2)]
    assert table["rows"][0]["decisions"] == [1, 0, 8, 0]  # in DECISIONS order
    assert table["patterns"] == len(patterns) and table["full"] == 3
    kinds = {k["id"]: (k["missing"], k["incomplete"]) for k in table["kinds"]}
    assert kinds["conditions"] == (15, 0) and kinds["documents"] == (13, 2)
    assert kinds["medications"] == (0, 7) and kinds["laboratory"] == (8, 0)
    assert kinds["questionnaire"] == (9, 0) and kinds["questionnaire:unanswered"] == (4, 0)
    assert table["data_only"] == sum(n // 2 for n in patterns.values())
    assert table["complete"] == [("conditions", "Conditions (problem list, diagnoses)")]


@pytest.mark.slow
@pytest.mark.xdist_group("batch-resume")
def test_resume_with_complete_equals_a_clean_run_and_another_value_is_refused(lone, tmp_path):
    clean = batch(lone, tmp_path / "clean", complete="all")
    out = tmp_path / "out"
    args = ["batch", *map(str, lone), "--as-of", AS_OF.isoformat(), "--out", str(out),
            "--complete", "all"]
    killed = _cli(args, kill="unit:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    for other in ([*args[:-1], "conditions"], args[:-2]):  # another list, or none at all
        refused = _cli([*other, "--resume"])
        assert refused.returncode == 2, refused.stderr
        assert "cannot resume" in refused.stderr and "--complete" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert (out / ".work" / "manifest.json").exists()  # the killed run is kept
    resumed = _cli([*args, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert outputs(out) == clean
    # the same kinds in another order are the same run
    killed = _cli([*args[:-1], "conditions,medications"], kill="unit:1")
    assert killed.returncode == -signal.SIGKILL
    resumed = _cli([*args[:-1], "medications,conditions", "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert outputs(out) == batch(lone, tmp_path / "clean2", complete="conditions,medications")


def test_resume_refuses_a_run_with_other_complete_kinds(population, tmp_path):
    """In-process: the manifest of an unfinished run with --complete all, resumed without."""
    from msc_screen.batch.plan import WorkDir, make_plan

    ruleset = get_ruleset()
    inputs = [str(population["bundles"].absolute())]
    args = {"inputs": inputs, "as_of": AS_OF.isoformat(), "policy": None,
            "complete": list(declared_kinds(ruleset, "all")),
            "ruleset": ruleset.ruleset_info, "policy_info": ruleset.policy_info}
    out = tmp_path / "o"
    work = WorkDir(out)
    work.reset()
    work.write_manifest(make_plan(inputs, args))
    with pytest.raises(ResumeError, match="--complete"):
        run_batch(BatchOptions(inputs, AS_OF, out, resume=True))
    # the same kinds resume (nothing screened yet: every unit runs)
    result = run_batch(BatchOptions(inputs, AS_OF, out, resume=True, complete="all"))
    assert result.stats.total == PATIENTS
