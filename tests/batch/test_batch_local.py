"""Local batch: determinism across workers, NDJSON grouping, bad inputs, summary columns."""

from __future__ import annotations

import csv
import gzip
import io
import random
import re
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from msc_screen import screen_all
from msc_screen.batch import BatchOptions, run_batch
from msc_screen.cli import app
from msc_screen.knowledge import get_ruleset

from .conftest import AS_OF, PATIENTS, batch


def _lines(data: bytes) -> list[dict]:
    return [orjson.loads(x) for x in data.splitlines() if x]


def test_workers_1_and_2_give_identical_outputs(population, tmp_path):
    one = batch([population["bundles"]], tmp_path / "w1", workers=1)
    two = batch([population["bundles"]], tmp_path / "w2", workers=2)
    assert one == two
    assert len(_lines(one["assessments.ndjson"])) == PATIENTS
    assert not (tmp_path / "w1" / ".work").exists()  # work files removed after success


def test_assessments_are_the_engines_json(population, tmp_path):
    out = batch([population["bundles"]], tmp_path / "o")
    expected = [a.to_json() for a in
                sorted(screen_all(population["bundles"], AS_OF), key=lambda a: a.patient_id)]
    assert out["assessments.ndjson"].splitlines() == expected


def test_ndjson_export_matches_bundles(population, tmp_path):
    b = batch([population["bundles"]], tmp_path / "b")
    n = batch([population["ndjson"]], tmp_path / "n")
    assert _lines(n["assessments.ndjson"]) == _lines(b["assessments.ndjson"])
    assert n["summary.csv"] == b["summary.csv"]


def test_patient_spread_over_files_is_grouped(population, tmp_path):
    """Resources of one patient scattered over several shuffled files (some gzip) give the
    same assessments as the tidy export."""
    src = population["ndjson"]
    scattered = tmp_path / "scattered"
    scattered.mkdir()
    rng = random.Random(3)
    lines: list[bytes] = []
    for f in sorted(src.glob("*.ndjson")):
        lines.extend(x for x in f.read_bytes().splitlines() if x)
    rng.shuffle(lines)
    parts = [lines[i::4] for i in range(4)]
    for i, part in enumerate(parts):
        data = b"\n".join(part) + b"\n"
        if i % 2:
            (scattered / f"part{i}.ndjson.gz").write_bytes(gzip.compress(data))
        else:
            (scattered / f"part{i}.ndjson").write_bytes(data)
    tidy = batch([src], tmp_path / "tidy")
    messy = batch([scattered], tmp_path / "messy")
    assert _lines(messy["assessments.ndjson"]) == _lines(tidy["assessments.ndjson"])


def test_partitions_bound_memory_and_keep_patients_whole(population, tmp_path, monkeypatch):
    """Forcing many small partitions changes nothing in the output."""
    from msc_screen.batch import plan

    one = batch([population["ndjson"]], tmp_path / "one")
    monkeypatch.setattr(plan, "PARTITION_BYTES", 64 * 1024)
    many = batch([population["ndjson"]], tmp_path / "many")
    key = lambda a: a["patient"]["id"]  # noqa: E731
    assert sorted(_lines(many["assessments.ndjson"]), key=key) == sorted(
        _lines(one["assessments.ndjson"]), key=key)
    from msc_screen.batch.plan import make_plan

    assert make_plan([str(population["ndjson"])], {}).partitions > 4


def _bad_inputs(d: Path, population: dict[str, Path]) -> list[Path]:
    good = sorted(population["bundles"].glob("*.json"))[:5]
    for g in good:
        (d / g.name).write_bytes(g.read_bytes())
    (d / "empty.json").write_bytes(b"")
    (d / "garbage.json").write_bytes(b"\x00\x01not json at all")
    (d / "truncated.json").write_bytes(good[0].read_bytes()[:200])
    bad_date = orjson.loads(good[1].read_bytes())
    bad_date["entry"][0]["resource"]["birthDate"] = "2024-02-31"
    bad_date["entry"][0]["resource"]["id"] = "bad-date-patient"
    (d / "bad-date.json").write_bytes(orjson.dumps(bad_date))
    nd = d / "export"
    nd.mkdir()
    pat = orjson.dumps({"resourceType": "Patient", "id": "nd-1", "gender": "male",
                        "birthDate": "1970-01-01"})
    cond = orjson.dumps({"resourceType": "Condition", "id": "c1",
                         "subject": {"reference": "Patient/nd-1"},
                         "code": {"coding": [{"system": "http://snomed.info/sct",
                                              "code": "38341003"}]}})
    (nd / "Patient.ndjson").write_bytes(pat + b"\n")
    (nd / "Condition.ndjson").write_bytes(cond + b"\n{broken\n")
    return good


def test_mixed_good_and_bad_files(population, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    good = _bad_inputs(d, population)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["batch", str(d), "--as-of", AS_OF.isoformat(),
                                      "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = _lines((out / "errors.ndjson").read_bytes())
    by_file = {Path(e["source"]).name: e for e in errors}
    for name in ("empty.json", "garbage.json", "truncated.json", "bad-date.json",
                 "Condition.ndjson"):
        assert name in by_file, (name, errors)
    assert by_file["bad-date.json"]["field"] == "birthDate"
    assert by_file["Condition.ndjson"]["line"] == 2
    ids = [a["patient"]["id"] for a in _lines((out / "assessments.ndjson").read_bytes())]
    for g in good:
        assert g.stem in ids
    assert "nd-1" in ids and "bad-date-patient" not in ids
    nd1 = next(a for a in _lines((out / "assessments.ndjson").read_bytes())
               if a["patient"]["id"] == "nd-1")
    assert any("unreadable lines" in w for w in nd1["warnings"])
    assert "garbage.json" in (out / "report.html").read_text()


def test_summary_columns(population, tmp_path):
    out = batch([population["bundles"]], tmp_path / "s")
    rules = [r.id for r in get_ruleset().rules]
    table = pq.read_table(io.BytesIO(out["summary.parquet"]))
    assert table.column_names == ["patient_id", "decision", *rules, "age_band", "sex",
                                  "coverage_gaps"]
    rows = list(csv.DictReader(io.StringIO(out["summary.csv"].decode())))
    assert table.to_pylist() == rows
    assessments = {a["patient"]["id"]: a for a in _lines(out["assessments.ndjson"])}
    assert [r["patient_id"] for r in rows] == sorted(assessments)
    for row in rows:
        a = assessments[row["patient_id"]]
        assert row["decision"] == a["decision"]
        assert {f["rule"]: f["status"] for f in a["findings"]} == {r: row[r] for r in rules}
        assert row["sex"] in ("female", "male")
        assert row["age_band"] in ("18-34", "35-49", "50-64", "65-79", "80+")
        gaps = [k for k, v in a["coverage"].items()
                if v["status"] != "provided" and not k.startswith("answer:")]
        if any(v["status"] != "provided" for k, v in a["coverage"].items()
               if k.startswith("answer:")):
            gaps.append("questionnaire:unanswered")
        assert row["coverage_gaps"] == ",".join(gaps)
    assert {r["coverage_gaps"] for r in rows} >= {"pregnancy-status,documents,questionnaire"}


def test_report_is_self_contained(population, tmp_path):
    """Plots are Vega-Lite specs drawn by scripts inlined in the page: nothing is fetched
    (the browser test renders it)."""
    out = batch([population["bundles"]], tmp_path / "r")
    html = out["report.html"].decode()
    assert "Attrition funnel" in html
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert re.search(r"<link[^>]*\bhref=", html) is None
    plots = re.search(r'<script type="application/json" id="report-plots">(.*?)</script>',
                      html, re.S)
    assert plots is not None
    assert set(orjson.loads(plots.group(1))) == {"decisions", "funnel", "age", "sex"}
    ruleset = get_ruleset()
    assert ruleset.ruleset_info["sha256"] in html and ruleset.policy_info["sha256"] in html


def test_resume_refuses_other_inputs(population, tmp_path):
    from msc_screen.batch import BatchOptions, ResumeError, run_batch
    from msc_screen.batch.plan import WorkDir, make_plan

    out = tmp_path / "o"
    work = WorkDir(out)
    work.reset()
    work.write_manifest(make_plan([str(population["ndjson"])], {"inputs": ["elsewhere"]}))
    with pytest.raises(ResumeError):
        run_batch(BatchOptions([str(population["bundles"])], AS_OF, out, resume=True))


def test_quiet_on_a_pipe_and_exit_0_when_all_inputs_are_good(population, tmp_path):
    r = CliRunner().invoke(app, ["batch", str(population["bundles"]), "--as-of",
                                 AS_OF.isoformat(), "--out", str(tmp_path / "q")])
    assert r.exit_code == 0, r.output
    assert "units ·" not in r.output and "\x1b[" not in r.output
    assert f"{PATIENTS} patients screened" in r.output.replace("\n", " ")


def test_bad_as_of_and_missing_input_are_reported_without_traceback(tmp_path):
    r = CliRunner().invoke(app, ["batch", str(tmp_path / "nope"), "--as-of", "2024-02-31",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["batch", str(tmp_path / "nope"), "--as-of", "2024-02-01",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    errors = _lines((tmp_path / "o" / "errors.ndjson").read_bytes())
    assert errors[0]["reason"] == "no such file or directory"


def _dup_errors(data: bytes) -> list[dict]:
    return [e for e in _lines(data) if "more than one input" in e["reason"]]


def test_patient_in_bundles_and_in_an_ndjson_export_is_flagged(population, tmp_path):
    from msc_screen.batch import BatchOptions, run_batch

    out = tmp_path / "both"
    result = run_batch(BatchOptions([str(population["bundles"]), str(population["ndjson"])],
                                    AS_OF, out, workers=2))
    dups = _dup_errors((out / "errors.ndjson").read_bytes())
    ids = sorted(a["patient"]["id"] for a in
                 _lines((out / "assessments.ndjson").read_bytes()))
    assert len(ids) == 2 * PATIENTS
    assert [e["source"] for e in dups] == [f"Patient/{i}" for i in sorted(set(ids))]
    assert all("2 assessments" in e["reason"] for e in dups)
    assert result.stats.duplicates == PATIENTS and result.stats.errors_total == PATIENTS
    kind = next(k for k in result.stats.error_kinds if "more than one input" in k)
    assert result.stats.error_kinds[kind] == PATIENTS


def test_patient_in_two_bundle_units_is_flagged_with_bounded_buckets(population, tmp_path,
                                                                     monkeypatch):
    """A Bundle copied under a name that sorts into another unit; the check gives the same
    answer whether the ids fit one spill or are hashed over many (bounded memory)."""
    from msc_screen.batch import assemble

    d = tmp_path / "in"
    d.mkdir()
    files = sorted(population["bundles"].glob("*.json"))
    for f in files:
        (d / f.name).write_bytes(f.read_bytes())
    (d / "zz-copy-of-first.json").write_bytes(files[0].read_bytes())
    (d / "zz-copy-of-second.json").write_bytes(files[1].read_bytes())
    one = batch([d], tmp_path / "one")
    monkeypatch.setattr(assemble, "IDS_PER_BUCKET", 7)
    many = batch([d], tmp_path / "many", workers=2)
    expected = [f"Patient/{files[0].stem}", f"Patient/{files[1].stem}"]
    assert [e["source"] for e in _dup_errors(one["errors.ndjson"])] == expected
    assert sorted(e["source"] for e in _dup_errors(many["errors.ndjson"])) == expected
    assert many["assessments.ndjson"] == one["assessments.ndjson"]
    assert len(_lines(one["assessments.ndjson"])) == PATIENTS + 2


def test_plan_lists_files_like_the_reader(tmp_path):
    """The directory walk (``os.scandir``, no stat per file) finds the same files in the same
    order as a sorted ``Path.rglob`` — the reference it replaced — with the same errors."""
    from msc_screen.batch.plan import is_ndjson, make_plan
    from msc_screen.fhir.reader import SUFFIXES, iter_files

    def rglob_reference(paths: list[str]) -> list[str]:
        out = []
        for raw in paths:
            p = Path(raw)
            if p.is_dir():
                out += [str(f) for f in sorted(p.rglob("*"))
                        if f.is_file() and f.name.lower().endswith(SUFFIXES)]
            elif p.is_file():
                out.append(str(p))
        return out

    d = tmp_path / "tree"
    for rel in ("a-b.json", "a/b.json", "a/c/d.ndjson", "A.JSON", "b.json.gz", "notes.txt",
                "z/y/x.jsonl", "a.b/c.json", "empty/.keep"):
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"{}")
    (d / "link.json").symlink_to(d / "a-b.json")
    (d / "linkdir").symlink_to(d / "a")
    inputs = [str(d), str(d / "a" / "b.json"), str(tmp_path / "missing"), str(d / "empty")]
    expected = list(dict.fromkeys(rglob_reference(inputs)))
    assert list(dict.fromkeys(str(p) for p in iter_files(inputs) if isinstance(p, Path))) == \
        expected
    m = make_plan(inputs, {})
    assert [p for unit in m.bundle_units for p in unit] == [
        p for p in expected if not is_ndjson(p)]
    assert m.ndjson_files == [p for p in expected if is_ndjson(p)]
    assert [f[0] for f in m.fingerprint] == m.ndjson_files  # NDJSON stat-ed at plan time
    assert [e["reason"] for e in m.scan_errors] == [
        "no such file or directory", "directory holds no .json, .ndjson or .gz FHIR files"]


def test_report_counts_records_without_dates_or_known_codes(tmp_path):
    """The data-quality section says how many records the rules read had no usable date or no
    code in a known code system (counted in the workers, merged across units)."""

    def bundle(pid: str, conditions: list[dict]) -> bytes:
        entries = [{"resource": {"resourceType": "Patient", "id": pid, "gender": "male",
                                 "birthDate": "1960-01-01"}}]
        for i, c in enumerate(conditions):
            entries.append({"resource": {"resourceType": "Condition", "id": f"{pid}-{i}",
                                         "subject": {"reference": f"Patient/{pid}"}, **c}})
        return orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})

    local = {"coding": [{"system": "http://example.org/local-codes", "code": "X1"}]}
    snomed = {"coding": [{"system": "http://snomed.info/sct", "code": "22298006"}]}  # MI
    unread = {"coding": [{"system": "http://snomed.info/sct", "code": "38341003",
                          "display": "Hypertension"}]}  # no rule reads it
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.json").write_bytes(bundle("a", [{"code": local}, {"code": snomed,
                                                                 "onsetDateTime": "2020-01-01"}]))
    (inp / "b.json").write_bytes(bundle("b", [{"code": snomed, "recordedDate": "2021-05-01"},
                                              {"code": snomed}, {"code": unread}]))
    out = tmp_path / "out"
    result = run_batch(BatchOptions(inputs=[str(inp)], as_of=AS_OF, out=out))
    rec = result.stats.records
    assert rec[("Condition", "read")] == 4  # hypertension: no rule reads it, not converted
    assert rec[("Condition", "no date")] == 2  # a's local code, b's second condition
    assert rec[("Condition", "no known code")] == 1
    html = (out / "report.html").read_text()
    assert "Records the rules read: missing dates and unknown codes" in html
    assert "2 (50.0%)" in html and "1 (25.0%)" in html


def test_an_unlistable_directory_is_an_error_not_silently_skipped(population, tmp_path,
                                                                 monkeypatch):
    """A sub-directory the run cannot list would silently drop its patients: it is reported in
    errors.ndjson (and the exit status) while the rest is screened."""
    import os
    import shutil

    from msc_screen.batch import plan

    inp = tmp_path / "in"
    shutil.copytree(population["bundles"], inp / "site-a")
    (inp / "site-b").mkdir()
    shutil.copy(next(iter(sorted((inp / "site-a").glob("*.json")))), inp / "site-b" / "x.json")
    real = os.scandir

    def scandir(path):  # root ignores permissions, so refuse this one directory by hand
        if str(path).endswith("site-b"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(plan.os, "scandir", scandir)
    out = tmp_path / "out"
    result = run_batch(BatchOptions(inputs=[str(inp)], as_of=AS_OF, out=out))
    errors = _lines((out / "errors.ndjson").read_bytes())
    assert any(e["source"].endswith("site-b") and "cannot list directory" in e["reason"]
               for e in errors)
    assert result.stats.total == PATIENTS and result.errors >= 1


def test_ndjson_medication_references_resolve_across_partitions(tmp_path):
    """Medications are shared, not patient-bound: each spill unit finds them by id (from the
    medications spill) however the patients are partitioned."""
    from msc_screen.batch import plan

    export = tmp_path / "export"
    export.mkdir()
    pats = [f"pt{i}" for i in range(40)]
    (export / "Patient.ndjson").write_bytes(b"".join(orjson.dumps(
        {"resourceType": "Patient", "id": p, "gender": "male", "birthDate": "1970-01-01"}) + b"\n"
        for p in pats))
    (export / "Medication.ndjson").write_bytes(orjson.dumps(
        {"resourceType": "Medication", "id": "tac", "code": {"coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "42316"}]}}) + b"\n")
    (export / "MedicationRequest.ndjson").write_bytes(b"".join(orjson.dumps(
        {"resourceType": "MedicationRequest", "id": f"mr-{p}", "status": "active",
         "intent": "order", "subject": {"reference": f"Patient/{p}"},
         "authoredOn": "2025-10-01", "medicationReference": {"reference": "Medication/tac"}})
        + b"\n" for p in pats[::2]))
    old = plan.PARTITION_BYTES
    plan.PARTITION_BYTES = 1024  # several partitions from a tiny export
    try:
        out = tmp_path / "out"
        result = run_batch(BatchOptions(inputs=[str(export)], as_of=AS_OF, out=out))
    finally:
        plan.PARTITION_BYTES = old
    assert result.units > 1
    on_drug = set()
    for a in _lines((out / "assessments.ndjson").read_bytes()):
        f = next(f for f in a["findings"] if f["rule"] == "immune-disorder")
        if f["status"] == "present":
            assert f["evidence"][0]["reference"].startswith("MedicationRequest/")
            on_drug.add(a["patient"]["id"])
    assert on_drug == set(pats[::2])
