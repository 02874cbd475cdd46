"""The shared vocabulary as plain data: evidence, findings, assessments, and the patient record
the engine reads. No behaviour beyond serialisation; the engine gives these meaning.

Immutable values are frozen msgspec Structs rather than frozen dataclasses: a frozen dataclass
pays ``object.__setattr__`` per field (≈1.9 µs for nine fields against ≈0.15 µs), and a batch
makes dozens of these per patient."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson
from msgspec import Struct

# Decisions, worst first. The tool never says "eligible" or "cleared".
DECISIONS: Final = (
    "contraindicated",
    "physician-review",
    "needs-information",
    "no-contraindication-found",
)
SEVERITIES: Final = ("contraindicated", "physician-review", "needs-information", "recommendation")
STATUSES: Final = ("present", "absent", "unknown")
SEVERITY_RANK: Final = {s: i for i, s in enumerate(SEVERITIES)}  # lower = worse

Decision = Literal[
    "contraindicated", "physician-review", "needs-information", "no-contraindication-found"
]
Severity = Literal["contraindicated", "physician-review", "needs-information", "recommendation"]
Status = Literal["present", "absent", "unknown"]
SourceKind = Literal["fhir", "questionnaire", "note"]
CoverageStatus = Literal["provided", "not-provided", "incomplete"]


class Coding(Struct, frozen=True):
    system: str | None  # short key (snomed, icd10cm, loinc, ...) or the raw URI when unknown
    code: str
    display: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from .terminology.systems import canonical_uri

        return {
            "system": canonical_uri(self.system) if self.system else None,
            "code": self.code,
            "display": self.display,
        }


class DateRange(Struct, frozen=True):
    """A clinical date at its recorded precision: ``lo``..``hi`` are the first and last days it
    may denote (a year, a month, a day). Windows test the end that errs toward review."""

    lo: dt.date
    hi: dt.date
    text: str  # as recorded (ISO), for evidence

    @staticmethod
    def day(d: dt.date) -> DateRange:
        return DateRange(d, d, d.isoformat())


class Evidence(Struct, frozen=True):
    reference: str  # "Condition/123", "QuestionnaireResponse/9#pregnant", "DocumentReference/4"
    source: SourceKind
    code: Coding | None = None
    date: str | None = None
    text: str | None = None  # a note snippet or questionnaire answer text
    span: tuple[int, int] | None = None  # character span in a note
    context: dict[str, Any] | None = None  # note assertion flags / section
    detail: str | None = None  # why this record counted (status, dates, thresholds)
    uncertain: str | None = None  # why it only warrants review (unconfirmed, date missing...)

    def sort_key(self) -> tuple[str, str, str, int]:
        return (self.reference, self.date or "", self.code.code if self.code else "",
                self.span[0] if self.span else -1)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "reference": self.reference,
            "code": self.code.to_dict() if self.code else None,
            "date": self.date,
            "source": self.source,
            "text": self.text,
            "span": list(self.span) if self.span else None,
        }
        if self.context is not None:
            d["context"] = self.context
        if self.detail:
            d["detail"] = self.detail
        if self.uncertain:
            d["uncertain"] = self.uncertain
        return d


# Serialised evidence-free findings; holding the finding keeps its id() from being reused.
_FINDING_JSON: dict[int, tuple[Finding, bytes]] = {}


class Finding(Struct, frozen=True):
    rule: str
    title: str
    origin: str
    category: str
    severity: Severity  # effective severity of this finding (after policy and certainty)
    status: Status
    summary: str
    evidence: tuple[Evidence, ...] = ()
    citations: tuple[dict[str, Any], ...] = ()
    actions: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return self._to_dict()

    def to_json(self) -> bytes:
        """``orjson.dumps(self.to_dict())``; shared findings are serialised once."""
        if self.evidence:
            return orjson.dumps(self._to_dict())
        cached = _FINDING_JSON.get(id(self))
        if cached is not None and cached[0] is self:
            return cached[1]
        data = orjson.dumps(self._to_dict())
        if len(_FINDING_JSON) < 50_000:
            _FINDING_JSON[id(self)] = (self, data)
        return data

    def _to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title": self.title,
            "origin": self.origin,
            "category": self.category,
            "severity": self.severity,
            "status": self.status,
            "summary": self.summary,
            "evidence": [e.to_dict() for e in self.evidence],
            "citations": list(self.citations),
            "actions": list(self.actions),
        }


class KindCoverage(Struct, frozen=True):
    """How much of one kind of data an assessment was given: ``provided`` (some of it, or
    declared complete), ``not-provided`` (none; absence is not reassurance) or ``incomplete``
    (known to be partial: a failed fetch, a page limit, dropped resources), with the reason."""

    status: CoverageStatus
    reason: str | None = None
    count: int | None = None  # resources of the kind that were read, where counted

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"status": self.status}
        if self.count is not None:
            d["count"] = self.count
        if self.reason:
            d["reason"] = self.reason
        return d


class Assessment(Struct, frozen=True):
    patient_id: str
    as_of: dt.date
    decision: Decision
    findings: tuple[Finding, ...]
    ruleset: dict[str, str]
    policy: dict[str, str]
    warnings: tuple[str, ...] = ()
    documents: tuple[dict[str, Any], ...] = ()
    # kind of data (knowledge/coverage.yaml, and "answer:<linkId>" of the questions rules
    # read) -> how much of it the screening was given
    coverage: dict[str, KindCoverage] = {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient": {"id": self.patient_id},
            "as_of": self.as_of.isoformat(),
            "decision": self.decision,
            "findings": [f.to_dict() for f in self.findings],
            "ruleset": dict(self.ruleset),
            "policy": dict(self.policy),
            "coverage": self.coverage_dict(),
            "warnings": list(self.warnings),
            "documents": list(self.documents),
        }

    def coverage_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() for k, v in self.coverage.items()}

    def to_json(self) -> bytes:
        """Deterministic bytes: same input, same output; exactly ``orjson.dumps(to_dict())``,
        with each finding's bytes reused (most findings are shared by most patients)."""
        d = self._shallow_dict()
        d["findings"] = orjson.Fragment(b"[" + b",".join([f.to_json() for f in self.findings])
                                        + b"]")
        return orjson.dumps(d)

    def _shallow_dict(self) -> dict[str, Any]:
        return {
            "patient": {"id": self.patient_id},
            "as_of": self.as_of.isoformat(),
            "decision": self.decision,
            "findings": None,
            "ruleset": self.ruleset,
            "policy": self.policy,
            "coverage": self.coverage_dict(),
            "warnings": self.warnings,
            "documents": self.documents,
        }

    @property
    def present(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status == "present")


# ---------------------------------------------------------------- patient record (engine input)


class ConditionItem(Struct, frozen=True):
    reference: str
    codings: tuple[Coding, ...]
    clinical_status: str | None  # active|recurrence|relapse|inactive|remission|resolved|None
    verification: str | None  # confirmed|unconfirmed|provisional|differential|refuted|...
    onset: DateRange | None
    abatement: DateRange | None
    abated: bool  # an abatement is recorded, even if its date is not usable
    recorded: DateRange | None
    text: str | None = None


class ObservationItem(Struct, frozen=True):
    reference: str
    codings: tuple[Coding, ...]
    status: str | None
    effective: DateRange | None
    value: float | None = None
    comparator: str | None = None
    unit: str | None = None
    value_codings: tuple[Coding, ...] = ()
    value_text: str | None = None  # valueString / valueCodeableConcept.text / valueBoolean
    interpretation: tuple[str, ...] = ()  # v3 interpretation codes (H, HH, POS, ...)
    ref_low: float | None = None
    ref_high: float | None = None


class MedicationItem(Struct, frozen=True):
    reference: str
    codings: tuple[Coding, ...]
    status: str | None
    start: DateRange | None  # authoredOn / effective start / dateAsserted
    end: DateRange | None
    text: str | None = None


class ProcedureItem(Struct, frozen=True):
    reference: str
    codings: tuple[Coding, ...]
    status: str | None
    performed: DateRange | None
    text: str | None = None


class AllergyItem(Struct, frozen=True):
    reference: str
    codings: tuple[Coding, ...]
    clinical_status: str | None
    verification: str | None
    recorded: DateRange | None
    text: str | None = None


class AnswerItem(Struct, frozen=True):
    """One questionnaire answer (the patient's own words are evidence too)."""

    reference: str  # QuestionnaireResponse/<id>#<linkId>
    link_id: str
    values: tuple[Any, ...]  # bool, str, int/float, date, or Coding
    authored: DateRange | None
    text: str | None = None  # the answer as shown to a reader


class NoteItem(Struct, frozen=True):
    reference: str  # DocumentReference/<id> or note:<file name>
    text: str
    date: DateRange | None
    content_type: str = "text/plain"


@dataclass(slots=True)
class PatientRecord:
    """Everything known about one patient, already reduced to what the rules can use."""

    id: str
    gender: str | None = None
    birth_date: DateRange | None = None
    deceased: bool = False
    deceased_date: DateRange | None = None
    conditions: list[ConditionItem] = field(default_factory=list)
    observations: list[ObservationItem] = field(default_factory=list)
    medications: list[MedicationItem] = field(default_factory=list)
    procedures: list[ProcedureItem] = field(default_factory=list)
    allergies: list[AllergyItem] = field(default_factory=list)
    answers: list[AnswerItem] = field(default_factory=list)
    notes: list[NoteItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    has_patient_resource: bool = False
    # resources read per data kind ("Condition", "Observation:laboratory", ...), counted before
    # the reader's filter: what kinds of data the input held, not what the rules kept
    seen: dict[str, int] = field(default_factory=dict)
    # what the door knows about coverage: a kind declared complete (a Bulk export, the EHR's
    # successful search) is provided even with nothing in it; a failed fetch is incomplete
    declared: dict[str, KindCoverage] = field(default_factory=dict)
    # data that cannot be right (conflicting duplicate Patients, impossible ages): read by the
    # knowledge base's data-quality rule, so data errors lean toward review, never reassure
    data_issues: list[str] = field(default_factory=list)


class Mention(Struct, frozen=True):
    """A concept mention the notes extractor found, with its assertion context."""

    rule: str
    text: str
    span: tuple[int, int]
    negated: bool = False
    historical: bool = False
    family: bool = False
    hypothetical: bool = False
    uncertain: bool = False
    section: str | None = None
    snippet: str | None = None

    def flags(self) -> dict[str, Any]:
        return {
            "negated": self.negated,
            "historical": self.historical,
            "family": self.family,
            "hypothetical": self.hypothetical,
            "uncertain": self.uncertain,
            "section": self.section,
        }
