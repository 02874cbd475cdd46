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


def screen_bytes(data: bytes, source: str, day: dt.date, ruleset: CompiledRuleset,
                 ) -> list[Assessment]:
    """Screen every patient in a FHIR JSON payload; any bad resource → 400 naming it."""
    records = records_or_400([read_bytes(data, source)], ruleset)
    if not records:
        raise ApiProblem(422, f"{source}: no patient found (a Patient resource or resources "
                         "with a subject reference are needed)", code="required")
    extractor = notes_extractor()
    return [evaluate(r, ruleset, day, extractor) for r in records]


def screen_resources(resources: list[dict[str, Any]], source: str, day: dt.date,
                     ruleset: CompiledRuleset) -> list[Assessment]:
    import orjson

    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in resources]}
    return screen_bytes(orjson.dumps(bundle), source, day, ruleset)
