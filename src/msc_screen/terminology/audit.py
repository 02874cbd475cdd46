"""The terminology audit: every code in an input that no value set claims, with what the engine
makes of the records that carry it.

Value sets can only list the codes someone thought of. This module counts, per (code system,
code), the patients and records whose codes no value set the rules read claims, their displays,
the kinds of record, and the engine's verdict on each record (``classify``: the safety net read
its words as a rule's concept, it was reviewed as bearing on no rule, it has no words to read,
or nothing matched) — the list an informaticist reviews to extend the value sets or the
reviewed-codes list. The classifier is passed in (``SafetyNet.classify``), so this module does
not depend on the engine.

Counting happens in two steps, so a batch can split it over work units: ``CodeTally`` holds, per
patient of a set (a work unit, or a whole CLI input; each patient's records wholly in one
tally), how many records of each distinct (kind, codings, text) it has, and yields ``CodeRow``
objects with distinct-patient counts, describing each distinct record once (``Classifier``);
``CodeAudit`` sums rows from many tallies and sorts them. Output (table text, JSON, CSV) is
deterministic. The reader's filter hands over the records it passes over already counted
(``RecordBuilder``'s ``on_skip`` hook), so the work per record stays a tuple and a dict update.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model import Coding
from .systems import CANONICAL_URI, canonical_uri, system_key, system_name

Classify = Callable[[str, tuple[Coding, ...], str | None], tuple[str, tuple[str, ...]]]
RawCoding = tuple[str | None, str | None, str | None]  # (system as recorded, code, display)

VALUE_SET, SAFETY_NET, UNMATCHED, UNNAMED, REVIEWED = (
    "value-set", "safety-net", "unmatched", "unnamed", "reviewed")
# The verdicts a listed code can have, in the order a reviewer needs them: the net turned it into
# a finding; nothing read it; it has no words to read; someone already reviewed it. A code's main
# verdict is the first of these any of its records has.
OUTCOMES = (SAFETY_NET, UNMATCHED, UNNAMED, REVIEWED)
OUTCOME_LABEL = {SAFETY_NET: "safety net", UNMATCHED: "unmatched", UNNAMED: "unnamed",
                 REVIEWED: "reviewed"}
# record kinds (``knowledge.compiled.RECORD_KINDS``; ``CodeTally.add_record`` reads each)
KINDS = ("condition", "observation", "medication", "procedure", "allergy")
_MEMO_CAP = 50_000  # per memo: bounded memory with free-text records


# A record as the audit sees it: (kind, outcome, rules, ((code key, words shown), ...)); no
# codes when a value set claims it, it has none, or it is of a kind not asked for.
Described = tuple[str, str, tuple[str, ...], tuple[tuple[tuple[str | None, str], str | None],
                                                    ...]]


class Classifier:
    """``classify`` remembered per distinct (kind, codings, text), and each distinct record's
    description for ``CodeTally.rows`` (a batch worker describes the same few hundred records
    in every unit). Callable as ``classify`` is."""

    __slots__ = ("_classify", "_conv", "_described", "_verdicts")

    def __init__(self, classify: Classify) -> None:
        self._classify = classify
        self._verdicts: dict[tuple[str, tuple[Coding, ...], str | None],
                             tuple[str, tuple[str, ...]]] = {}
        self._described: dict[tuple[Any, bool, frozenset[str] | None], Described] = {}
        self._conv: dict[tuple[RawCoding, ...], tuple[Coding, ...]] = {}

    def __call__(self, kind: str, codings: tuple[Coding, ...], text: str | None
                 ) -> tuple[str, tuple[str, ...]]:
        key = (kind, codings, text)
        hit = self._verdicts.get(key)
        if hit is None:
            hit = self._classify(kind, codings, text)
            if len(self._verdicts) < _MEMO_CAP:
                self._verdicts[key] = hit
        return hit

    def describe(self, key: Any, raw: bool, kinds: frozenset[str] | None) -> Described:
        """``key``: (kind, codings, text), the codings as recorded (``raw``: (system, code,
        display) tuples, as the reader's ``on_skip`` hook gives them) or converted."""
        memo = (key, raw, kinds)
        hit = self._described.get(memo)
        if hit is None:
            hit = self._describe(key, raw, kinds)
            if len(self._described) < _MEMO_CAP:
                self._described[memo] = hit
        return hit

    def _describe(self, key: Any, raw: bool, kinds: frozenset[str] | None) -> Described:
        kind, codings, text = key
        if raw:
            hit = self._conv.get(codings)
            if hit is None:
                hit = tuple(Coding(system_key(s) or s, c, d) for s, c, d in codings if c)
                if len(self._conv) < _MEMO_CAP:
                    self._conv[codings] = hit
            codings = hit
        if not codings or (kinds is not None and kind not in kinds):
            return kind, VALUE_SET, (), ()
        outcome, rules = self(kind, codings, text)
        if outcome == VALUE_SET:
            return kind, outcome, rules, ()
        words = " ".join(text.split()) if text else None
        codes: dict[tuple[str | None, str], str | None] = {}
        for c in codings:
            code = (c.system, c.code.strip())
            if code not in codes:
                codes[code] = " ".join(c.display.split()) if c.display else words
        return kind, outcome, rules, tuple(codes.items())


def memoised(classify: Classify) -> Classifier:
    """``classify`` remembered (``Classifier``): records repeat a few hundred codes."""
    return classify if isinstance(classify, Classifier) else Classifier(classify)


def _add_all(d: dict[str, int], other: Mapping[str, int]) -> None:
    for k, n in other.items():
        d[k] = d.get(k, 0) + n


def _sorted(d: Mapping[str, int]) -> dict[str, int]:
    """Most records first, then by text: the order displays and rules are shown in."""
    return dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class CodeRow:
    """One code no value set claims: who carries it and what the engine makes of it."""

    system: str | None  # system key (snomed, icd10cm, ...), the URI of a local system, or None
    code: str
    patients: int = 0  # distinct patients in a tally; summed across tallies
    records: int = 0
    displays: dict[str, int] = field(default_factory=dict)  # words shown -> records
    kinds: dict[str, int] = field(default_factory=dict)  # record kind -> records
    outcomes: dict[str, int] = field(default_factory=dict)  # verdict -> records
    rules: dict[str, int] = field(default_factory=dict)  # rule the net fired for -> records

    @property
    def key(self) -> tuple[str | None, str]:
        return self.system, self.code

    @property
    def outcome(self) -> str:
        """The main verdict: the first of ``OUTCOMES`` any record carrying the code has."""
        return next((o for o in OUTCOMES if self.outcomes.get(o)), UNMATCHED)

    def add(self, other: CodeRow) -> None:
        self.patients += other.patients
        self.records += other.records
        _add_all(self.displays, other.displays)
        _add_all(self.kinds, other.kinds)
        _add_all(self.outcomes, other.outcomes)
        _add_all(self.rules, other.rules)

    # -- compact form for a batch unit's header ----------------------------------------------
    def partial(self) -> list[Any]:
        return [self.system, self.code, self.patients, self.records,
                dict(sorted(self.displays.items())), dict(sorted(self.kinds.items())),
                dict(sorted(self.outcomes.items())), dict(sorted(self.rules.items()))]

    @classmethod
    def from_partial(cls, part: list[Any]) -> CodeRow:
        system, code, patients, records, displays, kinds, outcomes, rules = part
        return cls(system, code, int(patients), int(records), dict(displays), dict(kinds),
                   dict(outcomes), dict(rules))

    # -- what readers see --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape: canonical system URI, counts, words, verdicts."""
        return {
            "system": canonical_uri(self.system) if self.system else None,
            "system_name": system_label(self.system),
            "code": self.code,
            "patients": self.patients,
            "records": self.records,
            "displays": list(_sorted(self.displays)),
            "kinds": [k for k in KINDS if self.kinds.get(k)],
            "engine": self.outcome,
            "outcomes": {o: self.outcomes[o] for o in OUTCOMES if self.outcomes.get(o)},
            "rules": list(_sorted(self.rules)),
        }


def system_label(system: str | None) -> str:
    """A system as people name it ("SNOMED CT"); a local system by its own identifier."""
    if system is None:
        return "(no system)"
    return system_name(system) if system in CANONICAL_URI else system


RecordKey = tuple[str, tuple[Coding, ...], str | None]  # (kind, codings, text)
RawKey = tuple[str, tuple[RawCoding, ...], str | None]  # (kind, codings as recorded, text)


class CodeTally:
    """The records of a set of patients (every record of each patient in this one tally: a
    batch work unit, or a whole CLI input), per patient: how many of each distinct (kind,
    codings, text). ``rows`` describes each distinct record once."""

    __slots__ = ("_coded", "_raw")

    def __init__(self) -> None:
        self._raw: dict[str | None, dict[RawKey, int]] = {}  # records passed over
        self._coded: dict[str | None, dict[RecordKey, int]] = {}  # records screened

    def skipped(self, counts: dict[str | None, dict[RawKey, int]]) -> None:
        """``RecordBuilder``'s ``on_skip`` hook: per patient, how many records of each (kind,
        codings as recorded, text) its filter passed over in a file. A patient's first counts
        are kept as they are (the builder hands them over), later ones added in."""
        raw = self._raw
        for pid, recs in counts.items():
            have = raw.get(pid)
            if have is None:
                raw[pid] = recs
            else:
                for key, n in recs.items():
                    have[key] = have.get(key, 0) + n

    def add_record(self, rec: Any) -> None:
        """Every coded record of a built ``PatientRecord``."""
        mine = self._coded.get(rec.id)
        if mine is None:
            mine = self._coded[rec.id] = {}
        for kind, items in (("condition", rec.conditions), ("observation", rec.observations),
                            ("medication", rec.medications), ("procedure", rec.procedures),
                            ("allergy", rec.allergies)):
            for it in items:
                if it.codings:
                    key = (kind, it.codings, None if kind == "observation" else it.text)
                    mine[key] = mine.get(key, 0) + 1

    def rows(self, classify: Classify, kinds: frozenset[str] | None = None) -> list[CodeRow]:
        """Per code carried by a record no value set claims (only records of ``kinds``, when
        given), in no particular order (``CodeAudit`` sorts). Each distinct record is
        described once (``Classifier``, remembered across tallies when ``classify`` is one);
        a patient counts once for a code however many of its records carry it."""
        describe = memoised(classify).describe
        seen: dict[Any, list[Any]] = {}  # record -> [description, records, patients]
        for part, raw in ((self._raw, True), (self._coded, False)):
            for pid, per in part.items():
                counted = pid is not None  # a record naming no patient counts for none
                for key, n in per.items():
                    r = seen.get(key)
                    if r is None:
                        r = seen[key] = [describe(key, raw, kinds), 0, 0]
                    r[1] += n
                    if counted:
                        r[2] += 1
        carriers: dict[tuple[str | None, str], list[list[Any]]] = {}  # code -> its records
        for r in seen.values():
            for code, _ in r[0][3]:
                carriers.setdefault(code, []).append(r)
        # a code several distinct records carry: the patients having any of them
        shared = {code for code, rs in carriers.items() if len(rs) > 1}
        per_shared: Counter[tuple[str | None, str]] = Counter()
        if shared:
            keys = {key for key, r in seen.items() if any(c in shared for c, _ in r[0][3])}
            for pid in {*self._raw, *self._coded}:
                if pid is None:
                    continue
                hit = (self._raw.get(pid, _EMPTY).keys() & keys) | (
                    self._coded.get(pid, _EMPTY).keys() & keys)
                if hit:
                    per_shared.update({c for k in hit for c, _ in seen[k][0][3] if c in shared})
        out = []
        for code, rs in carriers.items():
            row = CodeRow(code[0], code[1], per_shared[code] if code in shared else rs[0][2])
            displays, kinds_n, outcomes, rules_n = row.displays, row.kinds, row.outcomes, row.rules
            for (kind, outcome, rules, codes), records, _ in rs:
                row.records += records
                shown = dict(codes)[code]
                if shown:
                    displays[shown] = displays.get(shown, 0) + records
                kinds_n[kind] = kinds_n.get(kind, 0) + records
                outcomes[outcome] = outcomes.get(outcome, 0) + records
                for rule in rules:
                    rules_n[rule] = rules_n.get(rule, 0) + records
            out.append(row)
        return out


_EMPTY: dict[Any, int] = {}


class CodeAudit:
    """Rows summed over tallies (batch units), sorted for output: most patients first, then
    system, then code."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Iterable[CodeRow] = ()) -> None:
        self._rows: dict[tuple[str | None, str], CodeRow] = {}
        self.add(rows)

    def add(self, rows: Iterable[CodeRow]) -> None:
        """Sum ``rows`` in (a code seen first is taken over as it is, not copied)."""
        mine = self._rows
        for r in rows:
            have = mine.get(r.key)
            if have is None:
                mine[r.key] = r
            else:
                have.add(r)

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> list[CodeRow]:
        return sorted(self._rows.values(),
                      key=lambda r: (-r.patients, r.system or "", r.code))

    def partial(self) -> list[list[Any]]:
        return [r.partial() for r in sorted(self._rows.values(),
                                            key=lambda r: (r.system or "", r.code))]

    def merge(self, part: Iterable[list[Any]]) -> None:
        """Add a tally's ``partial`` (a batch unit's, from its header)."""
        mine = self._rows
        for p in part:
            row = mine.get((p[0], p[1]))
            if row is None:
                row = CodeRow.from_partial(p)
                mine[row.key] = row
                continue
            row.patients += int(p[2])
            row.records += int(p[3])
            for have, more in zip((row.displays, row.kinds, row.outcomes, row.rules), p[4:],
                                  strict=True):
                for k, n in more.items():
                    have[k] = have.get(k, 0) + n


# ---------------------------------------------------------------------------------- output
def engine_text(row: CodeRow) -> str:
    """What the engine makes of the code, in words: "safety net: active-malignancy", or each
    verdict with its records when they differ ("safety net: x (3); unmatched (2)")."""
    parts = []
    several = sum(1 for o in OUTCOMES if row.outcomes.get(o)) > 1
    for o in OUTCOMES:
        n = row.outcomes.get(o)
        if not n:
            continue
        text = OUTCOME_LABEL[o]
        if o == SAFETY_NET and row.rules:
            text += ": " + ", ".join(_sorted(row.rules))
        parts.append(f"{text} ({n:,})" if several else text)
    return "; ".join(parts)


def display_text(row: CodeRow, limit: int = 2, width: int = 70) -> str:
    """The commonest display(s), shortened; "(+N more)" when there are others."""
    names = list(_sorted(row.displays))
    shown = "; ".join(names[:limit])
    if len(shown) > width:
        shown = shown[:width - 1] + "…"
    if len(names) > limit:
        shown += f" (+{len(names) - limit} more)"
    return shown


def kinds_text(row: CodeRow) -> str:
    return ", ".join(k for k in KINDS if row.kinds.get(k))


def table_rows(rows: Iterable[CodeRow]) -> list[dict[str, str]]:
    """The cells of the human table (CLI and batch report), numbers formatted."""
    return [{"patients": f"{r.patients:,}", "records": f"{r.records:,}",
             "system": system_label(r.system), "code": r.code, "kind": kinds_text(r),
             "engine": engine_text(r), "display": display_text(r)} for r in rows]


TABLE_COLUMNS = (("patients", "patients", True), ("records", "records", True),
                 ("system", "system", False), ("code", "code", False),
                 ("kind", "kind", False), ("engine", "engine", False),
                 ("display", "display", False))


def render_table(rows: list[CodeRow], total: int) -> str:
    """Plain aligned text (no terminal width assumed; the display column last)."""
    cells = table_rows(rows)
    widths = {k: max([len(title)] + [len(c[k]) for c in cells]) for k, title, _ in TABLE_COLUMNS}
    lines = []

    def line(values: Mapping[str, str]) -> str:
        out = []
        for k, _, right in TABLE_COLUMNS:
            v = values[k]
            out.append(v if k == "display" else v.rjust(widths[k]) if right
                       else v.ljust(widths[k]))
        return "  ".join(out).rstrip()

    lines.append(line({k: title for k, title, _ in TABLE_COLUMNS}))
    lines.extend(line(c) for c in cells)
    shown = f"{len(rows):,} of {total:,}" if len(rows) < total else f"{total:,}"
    lines.append("")
    lines.append(f"{shown} code(s) in no value set the rules read, most patients first.")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("system", "system_name", "code", "patients", "records", "kinds", "engine",
               "rules", *(f"{o.replace('-', '_')}_records" for o in OUTCOMES), "displays")


def render_csv(rows: Iterable[CodeRow]) -> bytes:
    """Every row, canonical system URIs, lists joined with " | " (displays) and ";"."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        d = r.to_dict()
        w.writerow([d["system"] or "", d["system_name"], r.code, r.patients, r.records,
                    ";".join(d["kinds"]), d["engine"], ";".join(d["rules"]),
                    *(r.outcomes.get(o, 0) for o in OUTCOMES), " | ".join(d["displays"])])
    return buf.getvalue().encode("utf-8")
