"""The server's one door into the engine: bytes or resources in, Assessments out.

No rule logic here; this only turns reader errors into OperationOutcomes and picks the
ruleset a request may use (named policies only — a client must never name a server file).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from ..api import default_notes_extractor
from ..engine import NotesExtractor, evaluate
from ..engine.coverage import complete_kinds, declare_complete
from ..errors import KnowledgeError
from ..fhir.reader import ReadResult, read_bytes
from ..fhir.record import build_records
from ..knowledge import get_ruleset
from ..knowledge.compiled import CompiledRuleset
from ..model import Assessment, PatientRecord
from .config import Settings
from .problems import ApiProblem, input_error_issue


@functools.cache
def notes_extractor() -> NotesExtractor | None:
    return default_notes_extractor()


def resolve_ruleset(settings: Settings, policy: str | None = None) -> CompiledRuleset:
    """``policy`` from a request must be a policy named in the knowledge base."""
    if policy is None:
        return get_ruleset(settings.policy)
    kb = get_ruleset(settings.policy).kb
    if policy not in kb.policies:
        raise ApiProblem(400, f"unknown policy {policy!r}; known: {', '.join(sorted(kb.policies))}",
                         code="value", expression="policy")
    try:
        return get_ruleset(policy)
    except KnowledgeError as exc:
        raise ApiProblem(400, str(exc), code="value", expression="policy") from None


def parse_day(value: str | None, settings: Settings, field: str = "as_of") -> dt.date:
    if value is None or value == "":
        return settings.clock().date()
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise ApiProblem(400, f"{field}: {value[:40]!r} is not an ISO date (YYYY-MM-DD)",
                         code="value", expression=field) from None


def records_or_400(results: list[ReadResult], ruleset: CompiledRuleset
                   ) -> list[PatientRecord]:
    """Patient records from what was read; any bad resource → 400 naming it (every door)."""
    records, errors = build_records(results, ruleset)
    if errors:
        raise ApiProblem(400, errors[0].describe(),
                         issues=[input_error_issue(e) for e in errors[:50]])
    return records


def complete_or_400(ruleset: CompiledRuleset, complete: str | None) -> tuple[str, ...]:
    """The kinds a caller declares complete (``complete=all`` or a list); unknown → 400."""
    try:
        return complete_kinds(ruleset, complete)
    except ValueError as exc:
        raise ApiProblem(400, f"complete: {exc}", code="value", expression="complete") from None


def only_patient(records: list[PatientRecord], patient: str, source: str
                 ) -> list[PatientRecord]:
    """The caller names the patient: another patient's records are never screened for them,
    and are named (by id and how much they held) in the assessment's warnings."""
    mine = [r for r in records if r.id == patient]
    if not mine:
        raise ApiProblem(422, f"{source}: no record for patient {patient!r} (the input holds "
                         f"{len(records)} other patient(s))", code="not-found",
                         expression="patient")
    others = [r for r in records if r.id != patient]
    if others:
        held = ", ".join(f"Patient/{r.id} ({sum(r.seen.values())} resources)" for r in others)
        mine[0].warnings.append(f"resources of other patients were left out, not screened: "
                                f"{held}")
    return mine


def screen_bytes(data: bytes, source: str, day: dt.date, ruleset: CompiledRuleset,
                 patient: str | None = None, complete: tuple[str, ...] = ()
                 ) -> list[Assessment]:
    """Screen every patient in a FHIR JSON payload (or only ``patient``'s); any bad resource →
    400 naming it. ``complete``: kinds the caller declares complete."""
    records = records_or_400([read_bytes(data, source)], ruleset)
    if not records:
        raise ApiProblem(422, f"{source}: no patient found (a Patient resource or resources "
                         "with a subject reference are needed)", code="required")
    if patient is not None:
        records = only_patient(records, patient, source)
    declare_complete(records, complete)
    extractor = notes_extractor()
    return [evaluate(r, ruleset, day, extractor) for r in records]


def screen_resources(resources: list[dict[str, Any]], source: str, day: dt.date,
                     ruleset: CompiledRuleset, patient: str | None = None,
                     complete: tuple[str, ...] = ()) -> list[Assessment]:
    import orjson

    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in resources]}
    return screen_bytes(orjson.dumps(bundle), source, day, ruleset, patient, complete)
