"""The worker's summary rows: the fast CSV text and the per-unit record tally give exactly what
``csv.writer`` and per-record counting give."""

from __future__ import annotations

import datetime as dt

from msc_screen.batch.stats import RecordTally, Stats
from msc_screen.batch.work import csv_block, csv_rows
from msc_screen.model import Coding, ConditionItem, DateRange, ObservationItem, PatientRecord

KEYS = [("contraindicated", "present", None, "absent", "18-34", "female"),
        ("no-contraindication-found", "absent", "absent", "unknown", "unknown", "unknown"),
        ("physician-review", None, None, None, "80+", "other, or \"unknown\"\r\n")]


def test_csv_rows_is_csv_writer_byte_for_byte():
    for ids in (["a-1", "b.2", "C_3"], ["", "x", "y"], ["a,b", "q\"uote", "new\nline"],
                ["ümlaut", "sp ace", "tab\t"], ["a\r", "b", "c"]):
        for _ in range(2):  # the second time from the memo
            rows = [(pid, *key) for pid, key in zip(ids, KEYS, strict=True)]
            assert csv_rows(ids, KEYS) == csv_block(rows)
    assert csv_rows([], []) == b""


def _per_record(recs: list[PatientRecord]) -> dict:
    """The counting as it was: one record at a time."""
    counts: dict = {}
    known = frozenset({"snomed"})
    kinds = (("conditions", "Condition", "onset", "recorded"),
             ("observations", "Observation", "effective", None))
    for rec in recs:
        for attr, name, when, also in kinds:
            for it in getattr(rec, attr):
                counts[(name, "read")] = counts.get((name, "read"), 0) + 1
                if getattr(it, when) is None and (also is None or getattr(it, also) is None):
                    counts[(name, "no date")] = counts.get((name, "no date"), 0) + 1
                if not any(c.system in known for c in it.codings):
                    counts[(name, "no known code")] = counts.get((name, "no known code"), 0) + 1
    return counts


def test_record_tally_counts_as_one_record_at_a_time():
    day = DateRange.day(dt.date(2020, 1, 1))
    local, snomed = Coding("local", "X"), Coding("snomed", "1")
    recs = [PatientRecord(id="a", conditions=[
                ConditionItem("Condition/1", (), None, None, None, None, False, None),
                ConditionItem("Condition/2", (local, snomed), None, None, None, None, False, day),
                ConditionItem("Condition/3", (local,), None, None, day, None, False, None)]),
            PatientRecord(id="b", observations=[
                ObservationItem("Observation/1", (Coding(None, "x"),), "final", None)]),
            PatientRecord(id="c")]
    tally = RecordTally(frozenset({"snomed"}))
    for rec in recs:
        tally.add(rec)
    stats = Stats([])
    tally.into(stats)
    assert dict(stats.records) == _per_record(recs)
    assert stats.records[("Condition", "no date")] == 1
    assert stats.records[("Observation", "no known code")] == 1
