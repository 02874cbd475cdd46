"""The public Python API: the same engine every door uses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .engine import NotesExtractor, evaluate
from .engine.coverage import complete_kinds, declare_complete
from .errors import InputError
from .fhir.reader import read_source
from .fhir.record import build_records
from .knowledge import get_ruleset
from .model import Assessment, PatientRecord


def parse_as_of(as_of: dt.date | str | None) -> dt.date:
    """``None`` means today; strings must be ISO dates (YYYY-MM-DD)."""
    if as_of is None:
        return dt.date.today()
    if isinstance(as_of, dt.datetime):
        return as_of.date()
    if isinstance(as_of, dt.date):
        return as_of
    try:
        return dt.date.fromisoformat(str(as_of).strip()[:10])
    except ValueError:
        raise ValueError(f"as-of date {as_of!r} is not an ISO date (YYYY-MM-DD)") from None


def default_notes_extractor() -> NotesExtractor | None:
    """The notes extractor when the notes component is available, else None (notes are then
    listed as not analysed)."""
    try:
        from .notes import get_extractor
    except ImportError:
        return None
    return get_extractor()


def load_records(source: Any, name: str | None = None,
                 ) -> tuple[list[PatientRecord], list[InputError]]:
    """Patient records from any source, whole: they may be screened under any policy later
    (``screen_records``), so nothing is left out for one ruleset's sake."""
    return build_records(read_source(source, name))


Complete = str | list[str] | tuple[str, ...] | None


def screen_records(records: list[PatientRecord], as_of: dt.date | str | None = None,
                   policy: str | None = None, complete: Complete = None) -> list[Assessment]:
    ruleset = get_ruleset(policy)
    day = parse_as_of(as_of)
    notes = default_notes_extractor()
    declare_complete(records, complete_kinds(ruleset, complete))
    return [evaluate(r, ruleset, day, notes) for r in records]


def screen_all(source: Any, as_of: dt.date | str | None = None, policy: str | None = None,
               complete: Complete = None) -> list[Assessment]:
    """Screen every patient in ``source``; raises the first InputError if any input is bad."""
    # read and screened under one policy: records keep only what its rules can read
    records, errors = build_records(read_source(source), get_ruleset(policy))
    if errors:
        raise errors[0]
    return screen_records(records, as_of, policy, complete)


def screen(source: Any, as_of: dt.date | str | None = None, policy: str | None = None,
           complete: Complete = None) -> Assessment:
    """Screen one patient.

    ``source``: a path (file or directory), bytes, a parsed Bundle/resource dict, or a list of
    resource dicts. ``as_of``: a date or ISO string, default today. ``policy``: a policy name
    or a YAML file path, default the ruleset's default policy. ``complete``: kinds of data the
    source is known to hold completely ("all", or ids of ``knowledge/coverage.yaml``; default
    none): provided even when it holds nothing of them. Otherwise a kind is provided when the
    source holds at least one resource of it, and a rule with none of the data it needs is
    ``unknown``, never ``absent``.
    """
    results = screen_all(source, as_of, policy, complete)
    if len(results) != 1:
        raise InputError(_name(source), f"expected one patient, found {len(results)}; "
                         "use screen_all() for populations")
    return results[0]


def _name(source: Any) -> str:
    return str(source) if isinstance(source, str) else f"<{type(source).__name__}>"
