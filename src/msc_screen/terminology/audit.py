"""The terminology audit: every code in an input that no value set claims, with what the engine
makes of the records that carry it.

Value sets can only list the codes someone thought of. This module counts, per (code system,
code), the patients and records whose codes no value set the rules read claims, their displays,
the kinds of record, and the engine's verdict on each record (``classify``: the safety net read
its words as a rule's concept, it was reviewed as bearing on no rule, it has no words to read,
or nothing matched) — the list an informaticist reviews to extend the value sets or the
reviewed-codes list. The classifier is passed in (``SafetyNet.classify``), so this module does
not depend on the engine.

Counting happens in two steps, so a batch can split it over work units: ``CodeTally`` counts the
records of a set of patients (a work unit, or a whole CLI input; each patient's records wholly
in one tally) and yields ``CodeRow`` objects with distinct-patient counts; ``CodeAudit`` sums rows
from many tallies and sorts them. Output (table text, JSON, CSV) is deterministic.
"""

from __future__ import annotations

import csv
import io
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
# record kinds (``knowledge.compiled.RECORD_KINDS``) and the ``PatientRecord`` list of each
KINDS = ("condition", "observation", "medication", "procedure", "allergy")
_ATTRS = (("condition", "conditions"), ("observation", "observations"),
          ("medication", "medications"), ("procedure", "procedures"),
          ("allergy", "allergies"))
_MEMO_CAP = 200_000


def memoised(classify: Classify) -> Classify:
    """``classify`` remembered per distinct (kind, codings, text): records repeat a few hundred
    codes."""
    memo: dict[tuple[str, tuple[Coding, ...], str | None], tuple[str, tuple[str, ...]]] = {}

    def run(kind: str, codings: tuple[Coding, ...], text: str | None
            ) -> tuple[str, tuple[str, ...]]:
        key = (kind, codings, text)
        hit = memo.get(key)
        if hit is None:
            hit = classify(kind, codings, text)
            if len(memo) < _MEMO_CAP:
                memo[key] = hit
        return hit

    return run


def _inc(d: dict[str, int], key: str, n: int) -> None:
    d[key] = d.get(key, 0) + n


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


class CodeTally:
    """The records of a set of patients (every record of each patient in this one tally: a
    batch work unit, or a whole CLI input), counted per distinct (kind, codings, text) and
    patient; ``rows`` classifies each distinct record once and sums it into its codes."""

    __slots__ = ("_coded", "_raw")

    def __init__(self) -> None:
        self._coded: dict[RecordKey, dict[str | None, int]] = {}
        self._raw: dict[tuple[str, tuple[RawCoding, ...], str | None],
                        dict[str | None, int]] = {}

    def skipped(self, counts: Mapping[tuple[str | None, str, tuple[RawCoding, ...],
                                            str | None], int]) -> None:
        """``RecordBuilder``'s ``on_skip`` hook: the records its filter passed over in a file,
        per (patient, kind, codings as recorded, text)."""
        raw = self._raw
        for (pid, kind, codings, text), n in counts.items():
            key = (kind, codings, text)
            per = raw.get(key)
            if per is None:
                per = raw[key] = {}
            per[pid] = per.get(pid, 0) + n

    def add_record(self, rec: Any) -> None:
        """Every coded record of a built ``PatientRecord``."""
        coded = self._coded
        pid = rec.id
        for kind, attr in _ATTRS:
            for it in getattr(rec, attr):
                if it.codings:
                    key = (kind, it.codings, getattr(it, "text", None))
                    per = coded.get(key)
                    if per is None:
                        per = coded[key] = {}
                    per[pid] = per.get(pid, 0) + 1

    def _records(self) -> Iterable[tuple[RecordKey, dict[str | None, int]]]:
        """Every distinct record and its patients (a record converted and one passed over
        never share a key; if they did, ``rows`` would still count each once)."""
        yield from self._coded.items()
        conv: dict[tuple[RawCoding, ...], tuple[Coding, ...]] = {}
        for (kind, raw, text), per in self._raw.items():
            codings = conv.get(raw)
            if codings is None:
                codings = conv[raw] = tuple(Coding(system_key(s) or s, c, d)
                                            for s, c, d in raw if c)
            if codings:
                yield (kind, codings, text), per

    def rows(self, classify: Classify, kinds: frozenset[str] | None = None) -> list[CodeRow]:
        """Per code carried by a record no value set claims (only records of ``kinds``, when
        given), in no particular order (``CodeAudit`` sorts)."""
        acc: dict[tuple[str | None, str], CodeRow] = {}
        pids: dict[tuple[str | None, str], set[str | None]] = {}
        for (kind, codings, text), per in self._records():
            if kinds is not None and kind not in kinds:
                continue
            outcome, rules = classify(kind, codings, text)
            if outcome == VALUE_SET:
                continue
            n = sum(per.values())
            words = " ".join(text.split()) if text else None
            seen: set[tuple[str | None, str]] = set()
            for c in codings:
                key = (c.system, c.code.strip())
                if key in seen:
                    continue
                seen.add(key)
                row = acc.get(key)
                if row is None:
                    row = acc[key] = CodeRow(key[0], key[1])
                    pids[key] = set()
                pids[key].update(per)
                row.records += n
                shown = " ".join(c.display.split()) if c.display else words
                if shown:
                    _inc(row.displays, shown, n)
                _inc(row.kinds, kind, n)
                _inc(row.outcomes, outcome, n)
                for r in rules:
                    _inc(row.rules, r, n)
        for key, row in acc.items():
            row.patients = len(pids[key] - {None})  # a record naming no patient: no patient
        return list(acc.values())


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
        self.add(CodeRow.from_partial(p) for p in part)


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
