"""Data coverage: which kinds of data a screening was given, and how completely.

"No contraindication found" is only honest when the data that could have shown one was
there. The reader counts what the input held per kind (``PatientRecord.seen``, before its
filter); the door adds what it knows (``PatientRecord.declared``: a kind declared complete, a
fetch that failed); the kinds themselves are knowledge-base data (``coverage.yaml``). A rule
none of whose ``needs`` was provided is unknown, never absent (``evaluate``).
"""

from __future__ import annotations

from typing import Any

from ..knowledge.compiled import CompiledRuleset
from ..model import KindCoverage, PatientRecord

# a kind whose resources the reader did not count (a record built by hand) still counts what
# the record holds of it
_ITEMS = {"Condition": "conditions", "MedicationRequest": "medications",
          "MedicationStatement": "medications", "Procedure": "procedures",
          "AllergyIntolerance": "allergies", "DocumentReference": "notes"}
ANSWER = "answer:"
QR_ANSWER = "text/x-questionnaire-answer"  # a free-text answer read as a note: not a document


def _count(record: PatientRecord, resources: list[str]) -> int:
    """Resources of the kind the input held (the reader's count), or the records the door
    added itself (a note given beside the FHIR input), whichever is more."""
    n = sum(record.seen.get(r, 0) for r in resources)
    held = 0
    for name in {_ITEMS[r] for r in resources if r in _ITEMS}:
        items = getattr(record, name)
        held += (sum(i.content_type != QR_ANSWER for i in items) if name == "notes"
                 else len(items))
    return max(n, held)


def _in_valuesets(record: PatientRecord, vss: tuple[Any, ...], tokens: set[str] | None) -> int:
    """Records in one of ``vss``; ``tokens`` (the engine's per-patient index, when given) rules
    out the common case, a record with none, without a scan."""
    if tokens is not None and not any(f"{k}:{vs.id}" in tokens for vs in vss
                                      for k in ("observation", "condition")):
        return 0
    n = 0
    for items in (record.observations, record.conditions):
        for it in items:
            if any(vs.contains(c.system, c.code) for vs in vss for c in it.codings):
                n += 1
    return n


def record_coverage(record: PatientRecord, ruleset: CompiledRuleset,
                    tokens: set[str] | None = None) -> dict[str, KindCoverage]:
    """Per kind of data (in the knowledge base's order), then per question some rule needs."""
    out: dict[str, KindCoverage] = {}
    for kind, vss in ruleset.coverage:
        n = _count(record, kind.resources) + (_in_valuesets(record, vss, tokens) if vss else 0)
        out[kind.id] = _status(record.declared.get(kind.id), n)
    answered = {a.link_id for a in record.answers}
    asked = out.get("questionnaire")
    if (asked is None or asked.status == "not-provided") and not any(
            k.startswith(ANSWER) for k in record.declared):
        return out  # no questionnaire: its questions are not listed one by one
    for need in ruleset.needed_answers:
        n = 1 if need[len(ANSWER):] in answered else 0
        decl = record.declared.get(need)
        if decl is None and not n:
            out[need] = KindCoverage("not-provided", "not answered")
        else:
            out[need] = _status(decl, n, counted=False)
    return out


def _status(declared: KindCoverage | None, n: int, counted: bool = True) -> KindCoverage:
    count = n if counted else None
    if declared is not None and declared.status == "incomplete":
        return KindCoverage("incomplete", declared.reason, count)
    if n:
        return KindCoverage("provided", None, count)
    if declared is not None and declared.status == "provided":
        return KindCoverage("provided", declared.reason or "declared complete", count)
    return KindCoverage("not-provided", declared.reason if declared else None, count)


def provided(coverage: dict[str, KindCoverage]) -> frozenset[str]:
    return frozenset(k for k, v in coverage.items() if v.status == "provided")


def short_of_data(ruleset: CompiledRuleset, have: frozenset[str]) -> frozenset[str]:
    """The rules none of whose ``needs`` alternatives ``have`` wholly covers; memoised per set
    of provided kinds (a population has a handful of coverage patterns)."""
    memo: dict[frozenset[str], frozenset[str]] = ruleset.memo.setdefault("short-of-data", {})
    hit = memo.get(have)
    if hit is None:
        hit = frozenset(r.id for r in ruleset.rules
                        if r.needs and not any(alt <= have for alt in r.needs))
        if len(memo) < 10_000:
            memo[have] = hit
    return hit


def describe(coverage: dict[str, KindCoverage], kinds: frozenset[str] | tuple[str, ...]) -> str:
    """"conditions not provided; medications incomplete (timeout); question cancer-now not
    answered" — for a finding's summary and evidence."""
    parts = []
    for k in sorted(kinds):
        v = coverage.get(k)
        if v is None or v.status == "provided":
            continue
        if k.startswith(ANSWER):
            parts.append(f"question {k[len(ANSWER):]} not answered" if v.status == "not-provided"
                         else f"question {k[len(ANSWER):]} {v.status}")
            continue
        words = "not provided" if v.status == "not-provided" else v.status
        parts.append(f"{k} {words}" + (f" ({v.reason})" if v.reason else ""))
    return "; ".join(parts)


ALL = "all"


def complete_kinds(ruleset: CompiledRuleset, names: str | list[str] | tuple[str, ...] | None
                   ) -> tuple[str, ...]:
    """The kinds a caller declares complete: ``"all"`` (every kind an export holds) or a
    comma-separated list / sequence of kind ids. Unknown names raise ValueError naming them."""
    if not names:
        return ()
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)
             if n.strip()]
    known = {k.id: k for k, _ in ruleset.coverage}
    out: list[str] = []
    for n in items:
        if n == ALL:
            out.extend(k.id for k, _ in ruleset.coverage if k.export)
        elif n in known:
            out.append(n)
        else:
            raise ValueError(f"unknown kind of data {n!r}; known: {ALL}, "
                             f"{', '.join(known)}")
    return tuple(dict.fromkeys(out))


def declare_complete(records: list[PatientRecord], kinds: tuple[str, ...],
                     why: str = "declared complete") -> None:
    """The door knows these kinds are complete (a Bulk export, ``Patient/$everything``, the
    clinic's own record): provided even with nothing in them. Never overrides an
    ``incomplete`` the door recorded."""
    for rec in records:
        for k in kinds:
            cur = rec.declared.get(k)
            if cur is None or cur.status != "incomplete":
                rec.declared[k] = KindCoverage("provided", why)
