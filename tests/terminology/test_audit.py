"""The terminology audit's counting (``terminology.audit``) and the reader's ``on_skip`` hook:
the records the reader's filter passes over reach the audit exactly as whole records would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from msc_screen.engine.safety_net import safety_net
from msc_screen.fhir.reader import read_bytes, read_paths
from msc_screen.fhir.record import RecordBuilder
from msc_screen.knowledge import get_ruleset
from msc_screen.knowledge.compiled import RECORD_KINDS
from msc_screen.terminology.audit import KINDS, CodeAudit, CodeTally, memoised, render_csv

from .audit_inputs import EXPECTED, HYPERTENSION, check_assumptions, write_inputs


def _audit(paths: list[Path], whole: bool, split: int = 0) -> tuple[bytes, list[str]]:
    """The audit's CSV from whole records (every record converted) or from the reader's
    filter with the hook, and the errors; ``split``: the patients counted in tallies of that
    many, merged through their JSON form (as batch units are)."""
    rs = get_ruleset()
    classify = memoised(safety_net(rs).classify)
    tally = CodeTally()
    b = RecordBuilder() if whole else RecordBuilder.for_ruleset(rs, on_skip=tally.skipped)
    for r in read_paths(paths):
        b.add(r)
    records = b.finish()
    if not split:
        for rec in records:
            tally.add_record(rec)
        return render_csv(CodeAudit(tally.rows(classify)).rows()), [e.describe()
                                                                    for e in b.errors]
    assert whole  # (a filtered build's skipped records are not split by patient here)
    merged = CodeAudit()
    for i in range(0, len(records), split):
        part = CodeTally()
        for rec in records[i:i + split]:
            part.add_record(rec)
        merged.merge(orjson.loads(orjson.dumps(CodeAudit(part.rows(classify)).partial())))
    return render_csv(merged.rows()), [e.describe() for e in b.errors]


def test_kinds_are_the_knowledge_bases_record_kinds() -> None:
    assert KINDS == RECORD_KINDS


def test_the_filter_hides_nothing_from_the_audit(tmp_path: Path) -> None:
    check_assumptions()
    d = write_inputs(tmp_path)
    whole, errors = _audit([d], whole=True)
    filtered, errors2 = _audit([d], whole=False)
    assert errors == errors2 and len(errors) == 1
    assert filtered == whole
    assert whole.count(b"\n") == 1 + len(EXPECTED)


def test_tallies_merged_across_units_equal_one_tally(tmp_path: Path) -> None:
    d = write_inputs(tmp_path)
    assert _audit([d], whole=True, split=1) == _audit([d], whole=True)


def test_hook_sees_accepted_files_only_and_changes_nothing(tmp_path: Path) -> None:
    rs = get_ruleset()
    seen: list[dict[Any, int]] = []

    def bundle(pid: str, birth: str, subject: str | None) -> bytes:
        cond: dict[str, Any] = {"resourceType": "Condition", "id": f"{pid}-c",
                                "code": {"coding": [{"system": "http://snomed.info/sct",
                                                     "code": HYPERTENSION,
                                                     "display": "Hypertension"}]}}
        if subject:
            cond["subject"] = {"reference": subject}
        return orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": pid, "birthDate": birth}},
            {"resource": {"resourceType": "Patient", "id": f"{pid}-2"}},
            {"resource": cond}]})

    good = read_bytes(bundle("p1", "1970-01-01", "Patient/p1"), "good.json")
    bad = read_bytes(bundle("p2", "19700101", "Patient/p2"), "bad.json")  # bad birthDate
    nobody = read_bytes(bundle("p3", "1970-01-01", None), "nobody.json")  # names no patient
    plain = RecordBuilder.for_ruleset(rs)
    hooked = RecordBuilder.for_ruleset(rs, on_skip=seen.append)
    for b in (plain, hooked):
        for r in (good, bad, nobody):
            b.add(r)
    assert [e.source for e in hooked.errors] == ["bad.json"]
    assert plain.finish() == hooked.finish()  # the hook changes nothing that is built
    raw = (("http://snomed.info/sct", HYPERTENSION, "Hypertension"),)
    assert seen == [{("p1", "condition", raw, None): 1}, {(None, "condition", raw, None): 1}]


@pytest.mark.slow
def test_the_filter_hides_nothing_on_synthea(synthea_dir: Path) -> None:
    whole, errors = _audit([synthea_dir], whole=True)
    assert not errors
    assert _audit([synthea_dir], whole=False)[0] == whole
    assert _audit([synthea_dir], whole=True, split=7)[0] == whole
    assert whole.count(b"\n") > 100  # Synthea carries hundreds of codes no value set lists


def test_hook_names_patients_as_the_reader_does(tmp_path: Path) -> None:
    """A transaction Bundle's ``urn:uuid:`` subject is its Patient's id (not the uuid), and a
    Medication passed over behind a ``medicationReference`` is told too."""
    d = write_inputs(tmp_path, bad=False)
    seen: list[dict[Any, int]] = []
    b = RecordBuilder.for_ruleset(get_ruleset(), on_skip=seen.append)
    for r in read_paths([d]):
        b.add(r)
    assert {k[0] for counts in seen for k in counts} == {"pa", "pb", "pc"}
    assert {k[1] for counts in seen for k in counts if k[0] == "pc"} == {"condition",
                                                                         "medication"}
