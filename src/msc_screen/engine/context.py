"""What every criterion needs while one patient is evaluated."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from msgspec import Struct

from ..model import Evidence, Finding, Mention, PatientRecord


class Match(Struct, frozen=True):
    """One record that satisfied a criterion. ``cap`` limits the severity it can support
    (an unconfirmed diagnosis, a missing date, a note alone); ``why`` says so."""

    evidence: Evidence
    cap: str | None = None
    why: str | None = None


@dataclass(slots=True)
class Context:
    record: PatientRecord
    as_of: dt.date
    age: int | None
    mentions: dict[str, list[tuple[Mention, str]]] = field(default_factory=dict)
    findings: dict[str, Finding] = field(default_factory=dict)
    # what any criterion could match (engine/index.py); None: evaluate every criterion
    tokens: set[str] | None = None


def age_on(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
