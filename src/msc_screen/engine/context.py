"""What every criterion needs while one patient is evaluated."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from msgspec import Struct

from ..model import Evidence, Finding, KindCoverage, Mention, PatientRecord
from .safety_net import SafetyNet


class Match(Struct, frozen=True):
    """One record that satisfied a criterion. ``cap`` limits the severity it can support
    (an unconfirmed diagnosis, a missing date, a note alone); ``why`` says so."""

    evidence: Evidence
    cap: str | None = None
    why: str | None = None
    unknown: bool = False  # supports an unknown finding only (a record that states it uncertainly)


@dataclass(slots=True)
class Context:
    record: PatientRecord
    as_of: dt.date
    age: int | None
    mentions: dict[str, list[tuple[Mention, str]]] = field(default_factory=dict)
    findings: dict[str, Finding] = field(default_factory=dict)
    # what any criterion could match (engine/index.py); None: evaluate every criterion
    tokens: set[str] | None = None
    # reads the text of records no value set claims, and judges text patterns' context
    net: SafetyNet | None = None
    # kind of data -> how much of it the screening was given (engine/coverage.py)
    coverage: dict[str, KindCoverage] = field(default_factory=dict)
    provided: frozenset[str] = frozenset()  # the kinds whose status is "provided"


def age_on(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
