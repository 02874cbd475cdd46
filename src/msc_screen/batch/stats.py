"""Population counters for the report, computed per work unit and merged by the parent.

Each unit counts its own patients (in the worker), so the parent merges a few hundred counter
entries per unit instead of touching every patient: assembly stays a small serial step however
many workers screen.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..engine.coverage import ANSWER
from ..terminology.audit import CodeAudit

AGE_BANDS = ((0, 17, "0-17"), (18, 34, "18-34"), (35, 49, "35-49"), (50, 64, "50-64"),
             (65, 79, "65-79"), (80, 200, "80+"))
UNKNOWN = "unknown"
_REF = re.compile(r"\b([A-Z][A-Za-z]+)/[^\s;,:'\"]+")
_QUOTED = re.compile(r"'[^']*'")
_DATE = re.compile(r"\b\d{4}-\d{2}(?:-\d{2})?(?:T[0-9:.+\-Z]*)?")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_KEYS: dict[str, str] = {}  # memo: the same warnings recur across a unit's patients


def quality_key(warning: str) -> str:
    """A warning with identifiers, dates and numbers removed, so the report can count kinds
    of issue."""
    key = _KEYS.get(warning)
    if key is None:
        text = _QUOTED.sub("'…'", _REF.sub(r"\1/…", warning))
        key = _NUMBER.sub("N", _DATE.sub("<date>", text))
        if len(_KEYS) > 20_000:
            _KEYS.clear()
        _KEYS[warning] = key
    return key

ROW_KEYS = ("decisions", "present", "unknown", "first_exclusion", "band_total", "sex_total",
            "quality", "data_only")
PAIR_KEYS = ("band_present", "sex_present", "records", "coverage")

# A summary row's key is ``(decision, *rule statuses, age band, sex, coverage gaps)``: the
# columns after the rule statuses.
TAIL = 3
INCOMPLETE, UNANSWERED = ":incomplete", ":unanswered"
_GAPS: dict[tuple[tuple[str, str], ...], str] = {}  # memo: coverage statuses -> pattern


def coverage_gaps(coverage: dict[str, Any]) -> str:
    """The kinds of data an assessment was not given, as one compact, stable string for the
    summary's ``coverage_gaps`` column and the report's coverage table: kind ids in the
    knowledge base's order (``coverage.yaml``), comma-separated, each as its id when not
    provided and ``<id>:incomplete`` when known to be partial; the questions a rule needs,
    when a questionnaire was given, as one ``questionnaire:unanswered`` (or
    ``questionnaire:incomplete``) after the kinds — assessments.ndjson lists them one by one.
    Empty when every kind was provided."""
    sig = tuple([(k, v.status) for k, v in coverage.items() if v.status != "provided"])
    hit = _GAPS.get(sig)
    if hit is None:
        kinds: list[str] = []
        questions: list[str] = []
        for k, status in sig:
            if k.startswith(ANSWER):
                token = "questionnaire" + (INCOMPLETE if status == "incomplete" else UNANSWERED)
                if token not in questions and token not in kinds:
                    questions.append(token)
            else:
                kinds.append(k + INCOMPLETE if status == "incomplete" else k)
        hit = ",".join(kinds + [q for q in questions if q not in kinds])
        if len(_GAPS) >= 20_000:
            _GAPS.clear()
        _GAPS[sig] = hit
    return hit

# The records the rules read, by kind: (record attribute, resource name, its date attribute).
RECORD_KINDS = (("conditions", "Condition", "onset", "recorded"),
                ("observations", "Observation", "effective", None),
                ("medications", "Medication use", "start", None),
                ("procedures", "Procedure", "performed", None),
                ("allergies", "AllergyIntolerance", "recorded", None))
READ, NO_DATE, NO_KNOWN_CODE = "read", "no date", "no known code"


_POSITIONS: dict[tuple[Any, ...], tuple[tuple[int, ...], tuple[int, ...]]] = {}  # memo


def _positions(key: tuple[Any, ...], rules: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The rule positions of a row key's "present" and of its "unknown" statuses (keys recur
    across units, so each is worked out once)."""
    if len(key) - 1 - TAIL != rules:
        raise ValueError(f"a summary row has {len(key) - 1 - TAIL} rule statuses, not {rules}")
    hit = _POSITIONS.get(key)
    if hit is None:
        statuses = key[1:-TAIL]
        hit = (tuple(i for i, st in enumerate(statuses) if st == "present"),
               tuple(i for i, st in enumerate(statuses) if st == "unknown"))
        if len(_POSITIONS) >= 20_000:
            _POSITIONS.clear()
        _POSITIONS[key] = hit
    return hit


class RecordTally:
    """Per kind of record the rules read, how many a unit's patients have, how many lack a
    usable date, and how many have no code in a system the knowledge base knows (those can
    never match a rule by code). Counted one patient at a time, right after each is screened
    (its records still in the CPU's caches), into plain ints; ``into`` adds them to the
    ``Stats`` counter once per unit."""

    __slots__ = ("counts", "known")

    def __init__(self, known_systems: frozenset[str]) -> None:
        self.known = known_systems
        self.counts = [0] * (3 * len(RECORD_KINDS))  # per kind: read, no date, no known code

    def add(self, rec: Any) -> None:
        counts = self.counts
        known = self.known
        i = 0
        for attr, _, when, also in RECORD_KINDS:
            items = getattr(rec, attr)
            if items:
                counts[i] += len(items)
                undated = no_code = 0
                for it in items:
                    if getattr(it, when) is None and (also is None or getattr(it, also) is None):
                        undated += 1
                    for c in it.codings:
                        if c.system in known:
                            break
                    else:
                        no_code += 1
                counts[i + 1] += undated
                counts[i + 2] += no_code
            i += 3

    def into(self, stats: Stats) -> None:
        records = stats.records
        counts = self.counts
        for k, (_, name, _, _) in enumerate(RECORD_KINDS):
            for what, n in zip((READ, NO_DATE, NO_KNOWN_CODE), counts[3 * k:3 * k + 3],
                               strict=True):
                if n:
                    records[(name, what)] += n


@dataclass
class Stats:
    """Population counts the report draws (bounded: counters, never per-patient lists)."""

    rules: list[tuple[str, str]]  # (id, title) in rule order
    funnel_rules: frozenset[str] = frozenset()  # rules that exclude (not recommendations)
    total: int = 0
    input_bytes: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    first_exclusion: Counter[str] = field(default_factory=Counter)
    band_total: Counter[str] = field(default_factory=Counter)
    sex_total: Counter[str] = field(default_factory=Counter)
    band_present: Counter[tuple[str, str]] = field(default_factory=Counter)
    sex_present: Counter[tuple[str, str]] = field(default_factory=Counter)
    quality: Counter[str] = field(default_factory=Counter)
    # (resource kind, READ | NO_DATE | NO_KNOWN_CODE) -> records: completeness of what was read
    records: Counter[tuple[str, str]] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    # codes no value set claims (the terminology audit), per code: patients, records, verdicts
    codes: CodeAudit = field(default_factory=CodeAudit)
    # (coverage gaps pattern, decision) -> patients; "" is "every kind provided"
    coverage: Counter[tuple[str, str]] = field(default_factory=Counter)
    # coverage gaps pattern -> patients who are needs-information only for lack of data (every
    # finding that asks for information is the data-coverage rule or "not enough data")
    data_only: Counter[str] = field(default_factory=Counter)
    errors_shown: list[dict[str, Any]] = field(default_factory=list)
    errors_total: int = 0
    duplicates: int = 0  # extra assessments of patients found in more than one work unit
    report_seconds: float = 0.0  # time spent drawing the report (fixed, not per patient)

    def add_row(self, row: dict[str, Any]) -> None:
        """One summary row as a dict (patient_id, decision, rule statuses, age_band, sex,
        coverage_gaps)."""
        statuses = tuple(row.get(rid) for rid, _ in self.rules)
        self.add_rows(Counter([(row["decision"], *statuses, row["age_band"], row["sex"],
                                row.get("coverage_gaps") or "")]))

    def add_rows(self, keys: Counter[tuple[Any, ...]]) -> None:
        """Rows grouped by ``(decision, *statuses in rule order, age_band, sex,
        coverage_gaps)``: patients of a unit share few distinct keys, so this is far cheaper
        than one update per patient. The counts go to plain dicts first, then into the
        counters with one ``update`` each."""
        rules = [rid for rid, _ in self.rules]
        funnel = self.funnel_rules
        decisions: dict[str, int] = {}
        band_total: dict[str, int] = {}
        sex_total: dict[str, int] = {}
        present: dict[str, int] = {}
        band_present: dict[tuple[str, str], int] = {}
        sex_present: dict[tuple[str, str], int] = {}
        unknown: dict[str, int] = {}
        first_exclusion: dict[str, int] = {}
        coverage: dict[tuple[str, str], int] = {}
        total = 0
        for key, n in keys.items():
            decision, band, sex, gaps = key[0], key[-3], key[-2], key[-1]
            total += n
            pair = (gaps, decision)
            coverage[pair] = coverage.get(pair, 0) + n
            decisions[decision] = decisions.get(decision, 0) + n
            band_total[band] = band_total.get(band, 0) + n
            sex_total[sex] = sex_total.get(sex, 0) + n
            on, unsure = _positions(key, len(rules))
            first = None
            for i in on:
                rid = rules[i]
                present[rid] = present.get(rid, 0) + n
                pair = (rid, band)
                band_present[pair] = band_present.get(pair, 0) + n
                pair = (rid, sex)
                sex_present[pair] = sex_present.get(pair, 0) + n
                if first is None and rid in funnel:
                    first = rid
            for i in unsure:
                rid = rules[i]
                unknown[rid] = unknown.get(rid, 0) + n
            if first is not None:
                first_exclusion[first] = first_exclusion.get(first, 0) + n
        self.total += total
        self.decisions.update(decisions)
        self.band_total.update(band_total)
        self.sex_total.update(sex_total)
        self.present.update(present)
        self.band_present.update(band_present)
        self.sex_present.update(sex_present)
        self.unknown.update(unknown)
        self.first_exclusion.update(first_exclusion)
        self.coverage.update(coverage)

    def add_quality(self, warnings: Iterable[str]) -> None:
        self.quality.update(map(quality_key, warnings))

    def add_error(self, err: dict[str, Any]) -> None:
        self.errors_total += 1
        self.error_kinds[quality_key(str(err.get("reason", "")))] += 1
        if len(self.errors_shown) < 200:
            self.errors_shown.append(err)

    def partial(self) -> dict[str, Any]:
        """The per-patient counters as JSON (a work unit's share, merged by ``merge``)."""
        out: dict[str, Any] = {"total": self.total}
        for k in ROW_KEYS:
            out[k] = dict(sorted(getattr(self, k).items()))
        for k in PAIR_KEYS:
            out[k] = [[a, b, n] for (a, b), n in sorted(getattr(self, k).items())]
        out["codes"] = self.codes.partial()
        return out

    def merge(self, part: dict[str, Any]) -> None:
        self.total += int(part["total"])
        for k in ROW_KEYS:
            getattr(self, k).update(part[k])
        for k in PAIR_KEYS:
            c = getattr(self, k)
            for a, b, n in part[k]:
                c[(a, b)] += n
        self.codes.merge(part.get("codes") or ())
