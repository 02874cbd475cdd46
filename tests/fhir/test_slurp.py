"""Reading whole files with one descriptor: regular files, pipes, the size limit."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from msc_screen import limits
from msc_screen.errors import InputError
from msc_screen.fhir import reader
from msc_screen.fhir.reader import read_file, slurp


def test_regular_file_read_whole_with_its_stat(tmp_path: Path) -> None:
    p = tmp_path / "b.json"
    body = b'{"resourceType":"Patient","id":"p1"}' * 1000
    p.write_bytes(body)
    data, st = slurp(p)
    assert data == body and st.st_size == len(body)


def test_fifo_without_a_size_is_read_to_the_end(tmp_path: Path) -> None:
    fifo = tmp_path / "in.json"
    os.mkfifo(fifo)
    body = b'{"resourceType":"Patient","id":"p1","gender":"female"}' + b" " * 200_000

    def feed() -> None:
        with open(fifo, "wb") as f:
            for i in range(0, len(body), 4096):
                f.write(body[i:i + 4096])

    t = threading.Thread(target=feed)
    t.start()
    result = read_file(fifo)
    t.join()
    assert result.error is None
    assert [type(r).__name__ for r, _, _ in result.resources] == ["Patient"]


def test_size_limit_names_the_file_and_reads_nothing(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "big.json"
    p.write_bytes(b"{}" * 100)
    monkeypatch.setattr(limits, "_active", limits.BATCH.with_overrides({"input_bytes": 10}))
    with pytest.raises(InputError) as exc:
        slurp(p)
    assert str(p) in str(exc.value) and "200 bytes" in str(exc.value)
    assert "input_bytes" in str(exc.value) and "MSC_SCREEN_LIMIT_INPUT_BYTES" in str(exc.value)
    result = read_file(p)
    assert result.error is not None and "exceeds the limit input_bytes" in result.error.reason


def test_empty_and_unreadable_files_are_errors_not_tracebacks(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"  \n")
    assert read_file(empty).error.reason == "empty input"  # type: ignore[union-attr]
    missing = read_file(tmp_path / "nope.json")
    assert missing.error is not None and "cannot read" in missing.error.reason


def test_a_directory_that_cannot_be_listed_is_an_error(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``Path.rglob`` skipped unreadable directories silently (and their patients with them)."""
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.json").write_bytes(b"{}")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.json").write_bytes(b"{}")
    real = os.scandir

    def scandir(path: str) -> object:  # root ignores permissions: refuse one directory by hand
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(reader.os, "scandir", scandir)
    items = list(reader.iter_files([tmp_path]))
    errors = [i for i in items if isinstance(i, InputError)]
    assert [e.source for e in errors] == [str(tmp_path / "locked")]
    assert "cannot list directory" in errors[0].reason
    assert [p for p in items if isinstance(p, Path)] == [tmp_path / "ok" / "a.json"]


def test_resource_type_table_holds_only_r4_type_names() -> None:
    """A lint fix once turned a comment into entries ('#', 'noqa:', …), so a resource typed
    '#' was skipped as known instead of rejected as unknown."""
    from msc_screen.fhir.resource_types import R4_RESOURCE_TYPES

    assert len(R4_RESOURCE_TYPES) == 146
    assert all(t.isalpha() and t[0].isupper() for t in R4_RESOURCE_TYPES)
    assert {"Patient", "Condition", "VisionPrescription"} <= R4_RESOURCE_TYPES
    result = reader.read_bytes(b'{"resourceType": "#", "id": "x"}', "odd.json")
    assert result.error is not None and "unknown resourceType" in result.error.reason


def test_reader_filter_keeps_a_code_the_value_sets_would_match() -> None:
    """Observations no rule reads are not materialised; the filter must compare codes the way
    the value sets do (trimmed), or a padded code is dropped before any rule sees it."""
    from msc_screen import screen

    res = [{"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1990-01-01"},
           {"resourceType": "Observation", "id": "o", "status": "final",
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-11-20",
            "code": {"coding": [{"system": "http://loinc.org", "code": " 2106-3 "}]},
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                 "code": "10828004"}]}}]
    a = screen(res, as_of="2026-11-24")
    pregnancy = next(f for f in a.findings if f.rule == "pregnancy")
    assert pregnancy.status == "present"
    assert pregnancy.evidence[0].reference == "Observation/o"
