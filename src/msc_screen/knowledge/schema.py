"""Schema of the knowledge base. Rules are data; these structs give the data a strict shape.

Unknown keys are refused so a typo in a rule file is an error naming the file and key, not a
silently ignored criterion. ``"$name"`` values refer to a rule parameter that a policy may
override (windows, look-backs, exemptions); they are resolved when a ruleset is compiled.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SeverityName = Literal["contraindicated", "physician-review", "needs-information", "recommendation"]
StatusName = Literal["present", "absent", "unknown"]
CriterionKind = Literal[
    "condition", "observation", "medication", "procedure", "allergy", "questionnaire", "note",
    "rule", "demographic", "coverage",
]
Param = int | str | None  # an int, "$parameter", or null (no limit)
Uses = Literal[
    "race", "ethnicity", "language", "sexual-orientation", "gender-identity", "sex",
    "date-of-birth", "social-determinants-of-health", "health-status-assessment",
]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class CodeEntry(_Strict):
    code: str
    display: str | None = None


class Include(_Strict):
    system: str  # short key: snomed, icd10cm, loinc, rxnorm, ...
    codes: list[CodeEntry] = []
    ranges: list[str] = []  # ICD-10-CM: "C00-C96", "I21" (with all descendants)


# Canonical base of the project's value sets: ``url`` of each is this plus its id (lint checks).
VALUESET_CANONICAL_BASE = "https://msc-screen.org/fhir/ValueSet/"


class SourceSelect(_Strict):
    """Codes of a published source picked out by code, by ICD-10-CM code/category/range (with
    all descendants) or by a case-insensitive regular expression on the published display."""

    codes: list[str] = []
    icd10cm: list[str] = []  # "D37-D48", "O85", "Z3A.0"
    display: list[str] = []  # regular expressions, searched (not anchored)
    reason: str | None = None  # why (required for a drop)


class ValueSetSource(_Strict):
    """A published value set (VSAC) some of whose codes the set ships, and how it was narrowed:
    ``keep`` (when given) takes only the codes it matches, every ``drop`` removes the codes it
    matches, with its reason. The importer (``msc-screen rules import-vsac``) applies them and
    writes the result to ``valuesets/expansions/<id>.tsv``."""

    oid: str
    version: str
    title: str
    systems: list[str]  # short keys of the code systems taken (snomed, icd10cm, loinc, rxnorm)
    keep: SourceSelect | None = None
    drop: list[SourceSelect] = []
    note: str | None = None  # what the source contributes and why it fits


class ExpandedCode(_Strict):
    """One shipped code of a published source (a row of the generated expansion file, in its
    column order)."""

    system: str
    code: str
    version: str  # the code system's version in the published expansion
    display: str
    sources: str  # which of the set's sources hold it ("1", "1,2")


class ValueSetDef(_Strict):
    id: str
    title: str
    include: list[Include] = []
    description: str | None = None
    exclude: list[Include] = []
    # provenance: the set's own version and canonical url, the published sources its shipped
    # expansion comes from, and why any hand-listed codes, text patterns or ingredient names
    # (all project-authored) are there
    version: str | None = None
    url: str | None = None
    sources: list[ValueSetSource] = []
    project_authored: str | None = None
    # code system -> the versions of the shipped expansion's codes (lint checks against it)
    code_system_versions: dict[str, list[str]] = {}
    # case-insensitive words matched, with assertion context (negated, family, screening ...
    # are not matches), in the text of records that carry no code in a known system
    text_patterns: list[str] = []
    # drug classes: ingredient names (whole words, any case) matched in a medication's coding
    # displays and text, coded or not ("0.4 ML Enoxaparin sodium 100 MG/ML Prefilled Syringe")
    ingredients: list[str] = []
    # filled by the loader from valuesets/expansions/<id>.tsv (generated, never written in YAML)
    expansion: list[ExpandedCode] = []


class Criterion(_Strict):
    """One way a rule's data can match. Which fields apply depends on ``kind``."""

    kind: CriterionKind
    label: str | None = None  # the criterion in words, for the catalogue and evidence
    valueset: list[str] | str | None = None
    exclude_valuesets: list[str] | str | None = None
    # condition / allergy / medication status
    status: Literal["current", "resolved", "any"] = "current"
    onset_within_days: Param = None
    resolved_within_days: Param = None
    ended_by: list[str] = []  # value sets (procedure or condition) whose later record ends it
    # observation / procedure / medication timing and values
    within_days: Param = None
    value: Literal["any", "positive", "negative", "above-reference", "below-reference"] = "any"
    positive_valueset: str | None = None
    negative_valueset: str | None = None
    most_recent: bool = False
    default_upper_limits: dict[str, float] = {}  # LOINC code -> upper limit when no range given
    # questionnaire
    link_id: str | None = None
    answers: list[Any] = []
    # note mentions (from the notes extractor)
    accept_historical: bool | str = False
    # cross-rule
    rule: str | None = None
    rule_status: list[StatusName] = []
    # demographic (e.g. "age over 55" as an absent-if clause)
    min_age: Param = None
    max_age: Param = None
    sex: list[str] = []
    # coverage: kinds of data (knowledge/coverage.yaml) of which none was provided, or any is
    # known to be incomplete
    data: list[str] = []
    data_status: Literal["none-provided", "any-incomplete"] = "none-provided"
    # at most this severity when matched (e.g. a note alone), and why
    max_severity: SeverityName | None = None
    reason: str | None = None


class Applicability(_Strict):
    sex: list[Literal["female", "male", "other", "unknown"]] = []
    min_age: Param = None
    max_age: Param = None


class Parameter(_Strict):
    default: Any
    description: str
    unit: str | None = None


class Action(_Strict):
    id: str
    title: str
    when: list[StatusName] = msgspec.field(default_factory=lambda: ["present"])
    resource: Literal["ServiceRequest", "Task", "Communication"] = "ServiceRequest"
    codes: list[dict[str, str]] = []  # [{system: loinc, code: ..., display: ...}]
    description: str | None = None


class Option(_Strict):
    code: str
    display: str


class EnableWhen(_Strict):
    question: str
    operator: Literal["exists", "=", "!=", ">", "<", ">=", "<="] = "="
    answer: Any = None


class Question(_Strict):
    """A patient-facing question the rule needs (built into the FHIR Questionnaire)."""

    link_id: str
    text: str
    type: Literal["boolean", "choice", "date", "integer", "decimal", "string", "text"]
    section: str | None = None
    options: list[Option] = []
    enable_when: list[EnableWhen] = []
    required: bool = False
    help: str | None = None
    # what the answer describes: the patient's present state or their history. A free-text
    # answer to a "past" question ("Breast cancer" after "Have you had cancer in the past?")
    # is read as history by the notes matcher, never as a current mention.
    about: Literal["current", "past"] = "current"
    # accepted values (integer/decimal: min_value..max_value; date: not after the day it is
    # answered when not_in_future), written into the FHIR Questionnaire and checked on the server
    min_value: float | None = None
    max_value: float | None = None
    not_in_future: bool = False


class Summaries(_Strict):
    present: str
    absent: str
    unknown: str | None = None


class Attributes(_Strict):
    """ONC HTI-1 source attributes (§170.315(b)(11)); developer and funding default from the
    ruleset manifest."""

    released: str
    revised: str
    uses: list[Uses] = []
    developer: str | None = None
    funding_source: str | None = None


class RuleDef(_Strict):
    id: str
    title: str
    category: Literal[
        "infection", "immune", "malignancy", "genetic", "cardiovascular", "pregnancy-lactation",
        "thrombosis", "hypersensitivity", "data",
    ]
    origin: Literal["seed", "evidence"]
    severity: SeverityName
    summary: Summaries
    rationale: str
    patient_text: str
    citations: list[str]
    attributes: Attributes
    seed_group: str | None = None  # which of the article's groups it encodes ("1a", "4", ...)
    # the heading the patient's result page gives a finding, in plain words ("Cancer now or
    # recent cancer treatment", not "Active malignancy"); the title is used when absent
    patient_title: str | None = None
    applicability: Applicability = msgspec.field(default_factory=Applicability)
    parameters: dict[str, Parameter] = {}
    present_if: list[Criterion] = []
    unknown_if: list[Criterion] = []
    absent_if: list[Criterion] = []
    otherwise: StatusName = "absent"  # what missing data means
    # what "absent" rests on: alternatives, each a set of kinds of data (knowledge/coverage.yaml
    # ids, or "answer:<linkId>") that must all have been provided — the record's kinds, or the
    # patient's answer. With no alternative complete the finding is unknown ("not enough
    # data"), never absent.
    needs: list[list[str]] = []
    # kinds the rule's criteria read that "absent" does not need, each with why (another rule
    # reports the gap, or the kind only ever corroborates)
    not_needed: dict[str, str] = {}
    uncertain_severity: SeverityName = "physician-review"
    unknown_severity: SeverityName = "needs-information"
    actions: list[Action] = []
    questions: list[Question] = []
    order: int = 100  # position in reports and the attrition funnel


class CoverageKind(_Strict):
    """One kind of data the rules read. A record provides it when the input held a resource
    counted under ``resources`` ("Condition", "Observation:laboratory": type and category) or a
    record in one of ``valuesets``, or when the door declares it complete."""

    id: str
    title: str
    resources: list[str] = []
    valuesets: list[str] = []
    read_by: list[CriterionKind] = []  # criterion kinds that read it (lint checks rules' needs)
    clinical: bool = True  # clinical data (the patient's demographics alone are not)
    # part of a record an EHR or Bulk export holds: declaring an export complete ("all") covers
    # it (the patient's own questionnaire is never part of an export)
    export: bool = True
    description: str | None = None


class CoverageDef(_Strict):
    kinds: list[CoverageKind]
    description: str | None = None


class ReviewedCode(_Strict):
    """A code an informaticist reviewed and found to bear on no rule: the safety net (which reads
    the text of records whose codes are in no value set) does not read records carrying it."""

    system: str  # short key or URI
    code: str
    display: str
    reason: str
    reviewed: str  # ISO date of the review


class ReviewedCodes(_Strict):
    description: str | None = None
    codes: list[ReviewedCode] = []


class Citation(_Strict):
    id: str
    text: str
    doi: str | None = None
    url: str | None = None


class Manifest(_Strict):
    id: str
    version: str
    title: str
    developer: str
    funding_source: str
    default_policy: str = "default"
    description: str | None = None


class RuleOverride(_Strict):
    enabled: bool = True
    severity: SeverityName | None = None
    parameters: dict[str, Any] = {}


class CdsPolicy(_Strict):
    """Which CDS Hooks cards speak (server/cds): a committee's alert-burden decision, so it is
    reviewed as data. Contraindication and physician-review findings always get a card."""

    # needs-information findings and recommendations as one info card on patient-view (the
    # order hooks always show it: an MSC order is then in play)
    patient_view_info: bool = False
    # the "screening incomplete" card on patient-view when data was missing or incomplete
    patient_view_coverage: bool = True
    # the strongest indicator a patient-view card may carry: Oracle Health shows critical
    # patient-view cards as pop-ups, and on chart open no MSC order is in play yet (the order
    # hooks keep "critical" for contraindications)
    patient_view_max_indicator: Literal["critical", "warning", "info"] = "warning"


class PolicyDef(_Strict):
    name: str
    title: str
    description: str
    rules: dict[str, RuleOverride] = {}
    cds: CdsPolicy = msgspec.field(default_factory=CdsPolicy)


class SignOffReason(_Strict):
    """One of the standard reasons a physician picks when signing off a screening
    (``signoff-reasons.yaml``); ``outcomes`` limits it to the outcomes it explains."""

    code: str
    text: str
    outcomes: list[Literal["proceed-to-consultation", "not-a-candidate",
                           "more-information-needed"]] = []


class SignOffReasons(_Strict):
    description: str | None = None
    reasons: list[SignOffReason] = []
