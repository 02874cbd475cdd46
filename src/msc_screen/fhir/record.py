"""Group decoded resources into one ``PatientRecord`` per patient id, across files.

Conversion of a file happens before anything is committed, so a bad date or reference in a
file rejects that file whole with an error naming the resource and field.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec

from .. import limits as _limits
from ..engine.safety_net import SafetyNet, safety_net
from ..errors import InputError
from ..limits import LimitExceeded
from ..model import (
    AllergyItem,
    AnswerItem,
    Coding,
    ConditionItem,
    DateRange,
    MedicationItem,
    NoteItem,
    ObservationItem,
    PatientRecord,
    ProcedureItem,
)
from ..terminology.systems import system_key
from ..terminology.valueset import CodeFilter
from .dates import BadDate, add_years, parse_date
from .reader import ReadResult, is_ndjson
from .structs import (
    BOOL_DECODER,
    CC_DECODER,
    CC_LIST_DECODER,
    CONTAINED_DECODER,
    INT_DECODER,
    QUANTITY_DECODER,
    RANGE_LIST_DECODER,
    STR_DECODER,
    AllergyIntolerance,
    Condition,
    DocumentReference,
    FBase,
    FClinical,
    FCodeableConcept,
    FPeriod,
    FQRItem,
    FQuantity,
    FRange,
    FReference,
    Medication,
    Observation,
    Patient,
    Procedure,
    QuestionnaireResponse,
    _MedicationUse,
)


def _codings(cc: FCodeableConcept | None) -> tuple[Coding, ...]:
    if cc is None or not cc.coding:
        return ()
    out = []
    for c in cc.coding:
        if c.code:
            out.append(Coding(system_key(c.system) or c.system, c.code, c.display))
    return tuple(out)


def _wanted(cc: FCodeableConcept | None, reads: CodeFilter | None, uncoded: bool,
            net: SafetyNet | None = None, kind: str = "") -> bool:
    """Could a rule read this record? Yes when there is no filter, when a code is in one of
    the kind's value sets, or when nothing is coded in a known system: free-text patterns may
    then apply, and with ``uncoded`` such a record is kept even without text (a condition
    without any code still gets its warning). A record whose known codes are in no value set
    is still kept when a drug class's ingredient name or the safety net reads its words."""
    if reads is None:
        return True
    if cc is None:
        return uncoded
    cd = cc.coding
    if cd is not None and len(cd) == 1:  # the usual record: its decision memoised whole
        c = cd[0]
        key = (c.system, c.code, c.display, cc.text, uncoded, net is not None)
        hit = reads.decided.get(key)
        if hit is None:
            hit = _wanted_uncached(cc, reads, uncoded, net, kind)
            if len(reads.decided) < 200_000:
                reads.decided[key] = hit
        return hit
    return _wanted_uncached(cc, reads, uncoded, net, kind)


def _wanted_uncached(cc: FCodeableConcept, reads: CodeFilter, uncoded: bool,
                     net: SafetyNet | None, kind: str) -> bool:
    known = False
    seen: list[tuple[str | None, str, str | None]] = []
    for c in cc.coding or ():
        code = c.code
        if not code:
            continue
        key = system_key(c.system)
        if reads.wants(key or c.system, code):
            return True
        known = known or key is not None
        seen.append((key or c.system, code, c.display))
    if not known:
        return uncoded or bool(cc.text) or any(d for _, _, d in seen)
    return net is not None and net.keeps(kind, tuple(seen), cc.text)


def _status(cc: FCodeableConcept | None) -> str | None:
    if cc is None or not cc.coding:
        return None
    for c in cc.coding:
        if c.code:
            return c.code.strip().lower()
    return None


def patient_id_of(reference: str) -> str | None:
    """The patient id a subject reference names: ``urn:uuid:<id>`` or ``[base/]Patient/<id>
    [/_history/n]``; None for anything else. The batch spills NDJSON by it, so a patient's
    resources meet in one place only if both read references the same way."""
    if reference.startswith("urn:uuid:"):
        return reference[len("urn:uuid:"):] or None
    idx = reference.rfind("Patient/")
    if idx >= 0:
        return reference[idx + len("Patient/"):].split("/_history")[0] or None
    return None


class _Conv:
    """Per-file conversion context: names the resource being converted in every error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.where = ""
        self.line: int | None = None

    def err(self, reason: str, fld: str | None = None) -> InputError:
        return InputError(self.source, reason, line=self.line, resource=self.where or None,
                          field=fld)

    def date(self, value: str | None, fld: str) -> DateRange | None:
        if value is None:
            return None
        try:
            return parse_date(value)
        except BadDate as exc:
            raise self.err(str(exc), fld) from None

    def period_start(self, p: FPeriod | None, fld: str) -> DateRange | None:
        if p is None:
            return None
        start = self.date(p.start, f"{fld}.start")
        end = self.date(p.end, f"{fld}.end")
        return start or end

    def period_end(self, p: FPeriod | None, fld: str) -> DateRange | None:
        if p is None:
            return None
        end = self.date(p.end, f"{fld}.end")
        return end or self.date(p.start, f"{fld}.start")



_CATEGORY_KEYS: dict[bytes, tuple[str, ...]] = {}  # raw Observation.category -> its keys


def _category_keys(raw: bytes) -> tuple[str, ...]:
    keys: list[str] = []
    try:
        ccs = CC_LIST_DECODER.decode(raw) or ()
    except msgspec.DecodeError:
        ccs = ()  # a malformed category counts as none (the rules never read it)
    for cc in ccs:
        for c in cc.coding or ():
            if c.code:
                keys.append(f"Observation:{c.code.strip().lower()}")
    return tuple(dict.fromkeys(keys)) or ("Observation:uncategorised",)


def _count_seen(res: Any, rtype: type[FBase], counts: dict[str, int]) -> None:
    """Count a resource under the coverage keys it provides: its type, and an Observation's
    categories ("Observation:laboratory"), "Observation:uncategorised" when it has none. The
    category is decoded once per distinct value (a chart repeats a few thousand times)."""
    name = rtype.__name__
    counts[name] = counts.get(name, 0) + 1
    if rtype is not Observation:
        return
    raw = bytes(res.category)
    keys = _CATEGORY_KEYS.get(raw)
    if keys is None:
        keys = _category_keys(raw) if raw else ("Observation:uncategorised",)
        if len(_CATEGORY_KEYS) < 10_000:
            _CATEGORY_KEYS[raw] = keys
    for key in keys:
        counts[key] = counts.get(key, 0) + 1


def _owner(res: Any, url_to_pid: dict[str, str]) -> str | None:
    """The patient a resource names, for counting only (None when it names none: the
    conversion reports that, if a rule reads the resource)."""
    ref = res.subject or res.patient
    r = ref.reference if ref is not None else None
    if not r:
        return None
    return url_to_pid.get(r) or patient_id_of(r)


def _years(age: FQuantity) -> float | None:
    if age.value is None:
        return None
    unit = (age.code or age.unit or "a").lower()
    years = age.value
    if unit in ("mo", "month", "months"):
        years = age.value / 12
    elif unit in ("wk", "week", "weeks"):
        years = age.value / 52
    elif unit in ("d", "day", "days"):
        years = age.value / 365.25
    return years


def _possible_age(age: FQuantity | None) -> bool:
    """An age a date can be computed from: finite, not negative, within the calendar (the
    plausible-age bound is the knowledge base's data-quality rule, not this)."""
    years = _years(age) if age is not None else None
    return years is None or (math.isfinite(years) and 0 <= years < 8000)


def _age_date(birth: DateRange | None, age: FQuantity | None) -> DateRange | None:
    if age is None or birth is None:
        return None
    years = _years(age)
    if years is None or not _possible_age(age) or birth.lo.year + int(years) > 9998:
        return None  # reported as a data issue when converted; the onset stays unknown
    return add_years(birth, years)


def _range_date(birth: DateRange | None, r: FRange | None) -> DateRange | None:
    if r is None:
        return None
    return _age_date(birth, r.low) or _age_date(birth, r.high)


# Coded records the filter passed over, for ``RecordBuilder``'s ``on_skip`` hook: per patient
# id (None where the subject names no patient), how many of each (record kind, codings as
# recorded — (system, code, display) each; ``Coding(system_key(system) or system, code,
# display)`` for each with a code is what a converted record carries —, text as the engine
# reads it: none for observations). Raw and counted: a chart repeats a few vital signs
# thousands of times, and a ``Coding`` per record would cost more than the tally wanting them.
RawCoding = tuple[str | None, str | None, str | None]
Skipped = tuple[str, tuple[RawCoding, ...], str | None]
SkipCounts = dict[str | None, dict[Skipped, int]]
SkipHook = Callable[[SkipCounts], None]


def _skip(res: Any, cc: FCodeableConcept, kind: str,
          per_ref: dict[str | None, dict[Skipped, int]], counts: SkipCounts,
          url_to_pid: dict[str, str], only: str | None) -> None:
    """Count a record the filter passes over (``cc`` has a coding) in its patient's counts;
    ``per_ref``: those counts by subject reference, for the references met in the file."""
    ref = res.subject or res.patient
    r = ref.reference if ref is not None else None
    mine = per_ref.get(r)
    if mine is None:
        mine = per_ref[r] = counts.setdefault(_pid_of(r, url_to_pid, only), {})
    key = _skip_key(cc, kind)
    mine[key] = mine.get(key, 0) + 1


_SKIP_KEYS: dict[Skipped, Skipped] = {}  # one object per distinct key (see ``_skip_key``)
_NO_REFS: dict[str | None, dict[Skipped, int]] = {}  # (``_convert`` without a hook: never used)


def _skip_key(cc: FCodeableConcept, kind: str) -> Skipped:
    """The key ``on_skip`` counts a record under, the same object for equal keys (while the
    table has room): dict look-ups then compare by identity, not tuple by tuple and string by
    string, in the builder and in the tallies that keep the keys."""
    cd = cc.coding or []
    if len(cd) == 1:  # the usual case, without a comprehension's call
        c = cd[0]
        raw: tuple[RawCoding, ...] = ((c.system, c.code, c.display),)
    else:
        raw = tuple([(c.system, c.code, c.display) for c in cd])
    key = (kind, raw, None if kind == "observation" else cc.text)
    hit = _SKIP_KEYS.get(key)
    if hit is None:
        if len(_SKIP_KEYS) < 50_000:  # (bounded: free-text keys could be many)
            _SKIP_KEYS[key] = key
        return key
    return hit


def _pid_of(ref: str | None, url_to_pid: dict[str, str], only: str | None) -> str | None:
    """The patient a subject reference names, as ``RecordBuilder._subject`` finds it; None
    where that would reject the file (the filter passes such a record over unresolved)."""
    if not ref:
        return only
    hit = url_to_pid.get(ref)
    if hit is not None:
        return hit
    pid = patient_id_of(ref)
    return pid if pid is not None else only


@dataclass
class _Pending:
    patients: dict[str, Patient] = field(default_factory=dict)
    items: list[tuple[str, str, Any]] = field(default_factory=list)  # (patient key, kind, item)
    medications: dict[str, FCodeableConcept | None] = field(default_factory=dict)
    reads: dict[str, CodeFilter] = field(default_factory=dict)  # record kind -> filter
    net: SafetyNet | None = None
    seen: dict[str | None, dict[str, int]] = field(default_factory=dict)  # patient -> kinds
    skipped: SkipCounts | None = None  # with an ``on_skip`` hook: what it is told
    clashes: dict[str, set[str]] = field(default_factory=dict)  # pid -> conflicting fields


class RecordBuilder:
    """Accumulates files; ``records()`` returns patients sorted by id (deterministic)."""

    def __init__(self, reads: dict[str, CodeFilter] | None = None,
                 net: SafetyNet | None = None, on_skip: SkipHook | None = None) -> None:
        """``reads``: per record kind (condition, observation, medication, procedure, allergy),
        the value sets the rules read; when given, only records that pass are converted —
        pass the ruleset's (``CompiledRuleset.record_filters``, or ``for_ruleset``) so the
        thousands of vital signs and diagnoses its rules never read are not materialised.
        Without, records are kept whole (to be screened under any policy later). ``net``: the
        ruleset's safety net, which keeps records whose codes are in no value set but whose
        words name a rule's concept or a drug's ingredient. ``on_skip``: called once per accepted
        file with, per patient, how many coded records of each (kind, codings, text) the filter
        passed over in it (``SkipCounts``; the hook may keep the dicts), for tallies that must
        see every record such as the terminology audit; without it the filter costs what it
        did."""
        self.reads = dict(reads or {})
        self.net = net
        self.on_skip = on_skip
        self._records: dict[str, PatientRecord] = {}
        self.errors: list[InputError] = []
        self.shared_warnings: list[str] = []
        self._clashed: dict[str, set[str]] = {}  # pid -> Patient fields two sources disagree on

    @classmethod
    def for_ruleset(cls, ruleset: Any, on_skip: SkipHook | None = None) -> RecordBuilder:
        return cls(ruleset.record_filters, safety_net(ruleset), on_skip)

    # -- public ---------------------------------------------------------------------------
    def add(self, result: ReadResult) -> bool:
        """Add one source; returns False (and records the error) when it is rejected."""
        if result.error is not None:
            self._reject(result, result.error)
            return False
        try:
            pending = self._convert(result)
        except InputError as exc:
            self._reject(result, exc)
            return False
        except RecursionError:
            lim = _limits.current()
            self._reject(result, LimitExceeded(result.source, "depth", lim.depth, "nesting"))
            return False
        except (ValueError, OverflowError, TypeError, ArithmeticError) as exc:
            # a value no conversion anticipated: the file is rejected, named, never a crash
            self._reject(result, InputError(result.source, "unreadable value "
                                            f"({type(exc).__name__}: {str(exc)[:120]})"))
            return False
        self._commit(pending, result.source)
        return True

    def records(self) -> list[PatientRecord]:
        out = []
        for pid in sorted(self._records):
            rec = self._records[pid]
            if self.shared_warnings:
                rec.warnings.extend(self.shared_warnings)
            out.append(rec)
        return out

    # -- internals ------------------------------------------------------------------------
    def _reject(self, result: ReadResult, exc: InputError) -> None:
        self.errors.append(exc)
        if result.ndjson or is_ndjson(result.source):
            self.shared_warnings.append(
                f"input {exc.source} could not be read; records may lack its resources"
            )

    def _record(self, pid: str) -> PatientRecord:
        rec = self._records.get(pid)
        if rec is None:
            rec = self._records[pid] = PatientRecord(id=pid)
        return rec

    def _convert(self, result: ReadResult) -> _Pending:
        conv = _Conv(result.source)
        pend = _Pending(reads=self.reads, net=self.net,
                        skipped={} if self.on_skip is not None and self.reads else None)
        url_to_pid: dict[str, str] = {}
        # pass 1: patients and medications (targets of references)
        for item, full_url, line in result.resources:
            conv.line = line
            rtype = type(item)
            res: Any = item
            if rtype is Patient:
                pid = res.id or (full_url.rsplit(":", 1)[-1] if full_url else None)
                if not pid:
                    conv.where = "Patient/?"
                    raise conv.err("Patient without id or fullUrl", "id")
                first = pend.patients.setdefault(pid, res)
                if first is not res:  # the same Patient twice in one input
                    clash = _patient_clash(first, res)
                    if clash:
                        pend.clashes.setdefault(pid, set()).update(clash)
                if full_url:
                    url_to_pid[full_url] = pid
                url_to_pid[f"Patient/{pid}"] = pid
            elif rtype is Medication:
                cc = res.code
                for key in (full_url, f"Medication/{res.id}" if res.id else None):
                    if key:
                        pend.medications[key] = cc
        only = next(iter(pend.patients)) if len(pend.patients) == 1 else None
        # pass 2: clinical resources; those no rule can read are passed over before anything
        # else is done with them (most of a chart)
        reads = self.reads
        seen = pend.seen
        skipped = pend.skipped
        per_ref: dict[str | None, dict[Skipped, int]] = {} if skipped is not None else _NO_REFS
        for res, _url, line in result.resources:
            rtype = type(res)
            converter = _CONVERTERS.get(rtype)
            if converter is None:
                continue
            # what kinds of data the input holds, counted before the filter (coverage)
            owner = only if only is not None else _owner(res, url_to_pid)
            counts = seen.get(owner)
            if counts is None:
                counts = seen[owner] = {}
            _count_seen(res, rtype, counts)
            keep = True
            if reads:
                code = _CODE_OF.get(rtype)
                if code is not None:
                    cc = code[0](res)
                    if not _wanted(cc, reads.get(code[1]), code[2], self.net, code[1]):
                        if skipped is not None and cc is not None and cc.coding:
                            _skip(res, cc, code[1], per_ref, skipped, url_to_pid, only)
                        if not _may_warn(res):
                            continue
                        keep = False  # converted for its warnings only: every door warns alike
            res = cast(FClinical, res)
            conv.line = line
            conv.where = f"{rtype.__name__}/{res.id or '?'}"
            pid = self._subject(res, url_to_pid, only, conv)
            for kind, item in converter(res, conv, pend):
                if kind == "skipped":  # a medication use its Medication's code filtered out
                    mine = cast(SkipCounts, skipped).setdefault(pid, {})
                    mine[item] = mine.get(item, 0) + 1
                elif keep or kind in ("warning", "data_issue"):
                    pend.items.append((pid, kind, item))
        # validate patient fields now, so a bad birthDate rejects the file
        for pid, res in pend.patients.items():
            conv.where = f"Patient/{pid}"
            conv.date(res.birthDate, "birthDate")
            conv.date(res.deceasedDateTime, "deceasedDateTime")
        return pend

    def _subject(self, res: FClinical, url_to_pid: dict[str, str], only: str | None,
                 conv: _Conv) -> str:
        ref: FReference | None = res.subject or res.patient
        if ref is None or not ref.reference:
            if only is not None:
                return only
            raise conv.err("no subject/patient reference and the source does not hold "
                           "exactly one Patient", "subject")
        r = ref.reference
        if r in url_to_pid:
            return url_to_pid[r]
        pid = patient_id_of(r)
        if pid is not None:
            return pid
        if only is not None:
            return only
        raise conv.err(f"subject {r!r} does not reference a Patient", "subject.reference")

    def _commit(self, pend: _Pending, source: str) -> None:
        for pid, counts in pend.seen.items():
            if pid is None:
                continue  # no patient to count it for (the reader reports why)
            rec = self._record(pid)
            for k, n in counts.items():
                rec.seen[k] = rec.seen.get(k, 0) + n
        for pid, res in pend.patients.items():
            rec = self._record(pid)
            rec.seen["Patient"] = rec.seen.get("Patient", 0) + 1
            gender = (res.gender or "").strip().lower() or None
            birth = parse_date(res.birthDate) if res.birthDate else None
            clash = set(pend.clashes.get(pid, ()))
            if rec.has_patient_resource:  # a Patient of the same id in an earlier source
                if gender and rec.gender and gender != rec.gender:
                    clash.add("gender")
                if birth and rec.birth_date and birth != rec.birth_date:
                    clash.add("birthDate")
                gender = gender or rec.gender
                birth = birth or rec.birth_date
            rec.has_patient_resource = True
            rec.gender = gender
            rec.birth_date = birth
            rec.deceased = bool(res.deceasedBoolean) or res.deceasedDateTime is not None
            rec.deceased_date = parse_date(res.deceasedDateTime) if res.deceasedDateTime else None
            if source not in rec.sources:
                rec.sources.append(source)
            if clash or pid in self._clashed:
                self._conflict(rec, clash, source)
        for pid, kind, item in pend.items:
            rec = self._record(pid)
            if source not in rec.sources:
                rec.sources.append(source)
            if kind == "warning":
                rec.warnings.append(item)
            elif kind == "data_issue":
                rec.data_issues.append(item)
            else:
                getattr(rec, kind).append(item)
        if pend.skipped and self.on_skip is not None:
            self.on_skip(pend.skipped)

    def _conflict(self, rec: PatientRecord, clash: set[str], source: str) -> None:
        """Two Patient resources of one id disagree: neither value is trusted (unknown sex
        and age apply every rule conservatively) and the data-quality rule asks for review."""
        known = self._clashed.setdefault(rec.id, set())
        new = clash - known
        known |= clash
        if "gender" in known:
            rec.gender = None
        if "birthDate" in known:
            rec.birth_date = None
        if new:
            msg = (f"Patient/{rec.id} is recorded more than once with conflicting "
                   f"{' and '.join(sorted(new))} (latest in {source}); neither value was used")
            rec.data_issues.append(msg)
            rec.warnings.append(msg)

    def finish(self) -> list[PatientRecord]:
        """Resolve onsets given as ages (needs the birth date, which may come from another
        file) and return the records."""
        for rec in self._records.values():
            rec.conditions = [c.resolve(rec.birth_date) if isinstance(c, _AgeCondition) else c
                              for c in rec.conditions]
        return self.records()


@dataclass
class _AgeCondition:
    """A condition whose onset/abatement is an Age or Range, resolved once the birth date is
    known."""

    item: ConditionItem
    onset_age: FQuantity | None
    onset_range: FRange | None
    abate_age: FQuantity | None
    abate_range: FRange | None

    def resolve(self, birth: DateRange | None) -> ConditionItem:
        from msgspec.structs import replace

        onset = self.item.onset or _age_date(birth, self.onset_age) or _range_date(
            birth, self.onset_range)
        abate = self.item.abatement or _age_date(birth, self.abate_age) or _range_date(
            birth, self.abate_range)
        return replace(self.item, onset=onset, abatement=abate)


def _condition(res: Any, conv: _Conv, pend: _Pending) -> Iterable[tuple[str, Any]]:
    cc = res.code
    onset = conv.date(res.onsetDateTime, "onsetDateTime") or conv.period_start(
        res.onsetPeriod, "onsetPeriod")
    abatement = conv.date(res.abatementDateTime, "abatementDateTime") or conv.period_end(
        res.abatementPeriod, "abatementPeriod")
    abated = abatement is not None or any(
        x is not None for x in (res.abatementString, res.abatementAge, res.abatementRange)
    ) or bool(res.abatementBoolean)
    item = ConditionItem(
        reference=conv.where,
        codings=_codings(cc),
        clinical_status=_status(res.clinicalStatus),
        verification=_status(res.verificationStatus),
        onset=onset,
        abatement=abatement,
        abated=abated,
        recorded=conv.date(res.recordedDate, "recordedDate"),
        text=cc.text if cc else None,
    )
    if not item.codings and not item.text:
        yield "warning", f"{conv.where} has no code; it could not be screened"
        return
    for fld in ("onsetAge", "abatementAge"):
        if not _possible_age(getattr(res, fld)):
            msg = (f"{conv.where} {fld} is not a possible age; the "
                   f"{'onset' if fld == 'onsetAge' else 'abatement'} is taken as unknown")
            yield "data_issue", msg
            yield "warning", msg
    for fld in ("onsetRange", "abatementRange"):
        r = getattr(res, fld)
        if r is not None and not (_possible_age(r.low) and _possible_age(r.high)):
            msg = f"{conv.where} {fld} holds an age that is not possible; taken as unknown"
            yield "data_issue", msg
            yield "warning", msg
    if (onset is None and (res.onsetAge or res.onsetRange)) or (
        abatement is None and (res.abatementAge or res.abatementRange)
    ):
        yield "conditions", _AgeCondition(item, res.onsetAge, res.onsetRange,
                                          res.abatementAge, res.abatementRange)
        return
    if onset is None and res.onsetString:
        yield "warning", f"{conv.where} onset recorded only as text"
    yield "conditions", item


def _raw(conv: _Conv, dec: msgspec.json.Decoder[Any], raw: msgspec.Raw, fld: str) -> Any:
    if not len(raw):
        return None
    try:
        return dec.decode(raw)
    except msgspec.DecodeError as exc:
        raise conv.err(f"wrong type ({exc})", fld) from None


def _observation(res: Any, conv: _Conv, pend: _Pending) -> Iterable[tuple[str, Any]]:
    cc = res.code
    codings = _codings(cc)
    eff = (conv.date(res.effectiveDateTime, "effectiveDateTime")
           or conv.period_start(res.effectivePeriod, "effectivePeriod")
           or conv.date(res.effectiveInstant, "effectiveInstant")
           or conv.date(res.issued, "issued"))
    q = _raw(conv, QUANTITY_DECODER, res.valueQuantity, "valueQuantity")
    ref_low = ref_high = None
    for rr in _raw(conv, RANGE_LIST_DECODER, res.referenceRange, "referenceRange") or ():
        if rr.high is not None and rr.high.value is not None and ref_high is None:
            ref_high = rr.high.value
        if rr.low is not None and rr.low.value is not None and ref_low is None:
            ref_low = rr.low.value
    interp: list[str] = []
    for icc in _raw(conv, CC_LIST_DECODER, res.interpretation, "interpretation") or ():
        interp.extend(c.code.strip().upper() for c in icc.coding or () if c.code)
    vcc = _raw(conv, CC_DECODER, res.valueCodeableConcept, "valueCodeableConcept")
    value_text = _raw(conv, STR_DECODER, res.valueString, "valueString")
    if value_text is None and vcc is not None:
        value_text = vcc.text or next((c.display for c in vcc.coding or () if c.display), None)
    vbool = _raw(conv, BOOL_DECODER, res.valueBoolean, "valueBoolean")
    if value_text is None and vbool is not None:
        value_text = "true" if vbool else "false"
    value = q.value if q is not None else None
    vint = _raw(conv, INT_DECODER, res.valueInteger, "valueInteger")
    if value is None and vint is not None:
        value = float(vint)
    yield "observations", ObservationItem(
        reference=conv.where,
        codings=codings,
        status=(res.status or "").lower() or None,
        effective=eff,
        value=value,
        comparator=q.comparator if q is not None else None,
        unit=(q.unit or q.code) if q is not None else None,
        value_codings=_codings(vcc),
        value_text=value_text,
        interpretation=tuple(interp),
        ref_low=ref_low,
        ref_high=ref_high,
    )


def _medication(res: Any, conv: _Conv, pend: _Pending) -> Iterable[tuple[str, Any]]:
    cc = res.medicationCodeableConcept
    if cc is None and res.medicationReference is not None:
        ref = res.medicationReference.reference or ""
        cc = pend.medications.get(ref)
        if cc is None and ref.startswith("#") and len(res.contained):
            try:
                contained: list[Any] = CONTAINED_DECODER.decode(res.contained)
            except msgspec.DecodeError as exc:
                raise conv.err(f"malformed contained resources ({exc})", "contained") from None
            for c in contained:
                if isinstance(c, Medication) and c.id == ref[1:]:
                    cc = c.code
        if cc is None and res.medicationReference.display:
            cc = FCodeableConcept(text=res.medicationReference.display)
    if res.medicationReference is not None and not _wanted(cc, pend.reads.get("medication"),
                                                           True, pend.net, "medication"):
        if pend.skipped is not None and cc is not None and cc.coding:  # (cc: never None here)
            yield "skipped", _skip_key(cc, "medication")
        return  # (coded in place, the record was filtered before conversion: _CODE_OF)
    start = (conv.date(getattr(res, "authoredOn", None), "authoredOn")
             or conv.date(res.effectiveDateTime, "effectiveDateTime")
             or conv.period_start(res.effectivePeriod, "effectivePeriod")
             or conv.date(getattr(res, "dateAsserted", None), "dateAsserted"))
    end = conv.period_end(res.effectivePeriod, "effectivePeriod") if (
        res.effectivePeriod and res.effectivePeriod.end) else None
    yield "medications", MedicationItem(
        reference=conv.where, codings=_codings(cc), status=(res.status or "").lower() or None,
        start=start, end=end, text=cc.text if cc else None,
    )


def _procedure(res: Any, conv: _Conv, pend: _Pending) -> Iterable[tuple[str, Any]]:
    cc = res.code
    performed = conv.date(res.performedDateTime, "performedDateTime") or conv.period_start(
        res.performedPeriod, "performedPeriod")
    yield "procedures", ProcedureItem(
        reference=conv.where, codings=_codings(cc), status=(res.status or "").lower() or None,
        performed=performed, text=cc.text if cc else None,
    )


def _allergy(res: Any, conv: _Conv, pend: _Pending) -> Iterable[tuple[str, Any]]:
    cc = res.code
    yield "allergies", AllergyItem(
        reference=conv.where, codings=_codings(cc), clinical_status=_status(res.clinicalStatus),
        verification=_status(res.verificationStatus),
        recorded=conv.date(res.recordedDate, "recordedDate")
        or conv.date(res.onsetDateTime, "onsetDateTime"),
        text=cc.text if cc else None,
    )


def _document(res: Any, conv: _Conv, pend: _Pending) -> Iterable[tuple[str, Any]]:
    if (res.status or "current") == "entered-in-error":
        return
    contents = res.content or []
    date = conv.date(res.date, "date")
    texts = []
    for i, c in enumerate(contents):
        att = c.attachment
        if att is None:
            continue
        ctype = (att.contentType or "").split(";")[0].strip().lower()
        if att.data is None:
            yield "warning", (f"{conv.where} attachment {i} is not inline "
                              f"({'by URL' if att.url else 'no data'}); not analysed")
            continue
        if ctype and not ctype.startswith("text/"):
            yield "warning", f"{conv.where} attachment {i} is {ctype}; not analysed"
            continue
        try:
            raw = base64.b64decode(att.data, validate=False)
        except (binascii.Error, ValueError):
            raise conv.err("attachment data is not base64",
                           f"content[{i}].attachment.data") from None
        texts.append(raw.decode("utf-8", errors="replace"))
    if texts:
        text = "\n\n".join(texts)
        cap = _limits.current().string_chars
        if len(text) > cap:
            raise LimitExceeded(conv.source, "string_chars", cap,
                                f"document text of {len(text):,} characters", line=conv.line,
                                resource=conv.where, field="content.attachment.data")
        yield "notes", NoteItem(reference=conv.where, text=text, date=date)


def _answer_values(a: Any, conv: _Conv, fld: str) -> list[Any]:
    vals: list[Any] = []
    if a.valueBoolean is not None:
        vals.append(a.valueBoolean)
    if a.valueString is not None:
        vals.append(a.valueString)
    if a.valueInteger is not None:
        vals.append(a.valueInteger)
    if a.valueDecimal is not None:
        vals.append(a.valueDecimal)
    for dv, name in ((a.valueDate, "valueDate"), (a.valueDateTime, "valueDateTime")):
        d = conv.date(dv, f"{fld}.{name}")
        if d is not None:
            vals.append(d.hi)
    if a.valueCoding is not None and a.valueCoding.code:
        c = a.valueCoding
        vals.append(Coding(system_key(c.system) or c.system, c.code, c.display))
    return vals


def _questionnaire_response(res: Any, conv: _Conv, pend: _Pending
                            ) -> Iterable[tuple[str, Any]]:
    if (res.status or "completed") in ("entered-in-error", "stopped"):
        return
    items = res.item or []
    authored = conv.date(res.authored, "authored")

    depth_cap = _limits.current().depth

    def walk(items: list[FQRItem], path: str, depth: int = 1) -> Iterable[tuple[str, Any]]:
        if depth > depth_cap:
            raise LimitExceeded(conv.source, "depth", depth_cap, "questionnaire items nesting",
                                line=conv.line, resource=conv.where, field="item")
        for i, it in enumerate(items):
            fld = f"{path}[{i}]"
            vals: list[Any] = []
            for j, a in enumerate(it.answer or ()):
                vals.extend(_answer_values(a, conv, f"{fld}.answer[{j}]"))
                if a.item:
                    yield from walk(a.item, f"{fld}.answer[{j}].item", depth + 1)
            if it.linkId and vals:
                ref = f"{conv.where}#{it.linkId}"
                shown = ", ".join(_show(v) for v in vals)
                yield "answers", AnswerItem(reference=ref, link_id=it.linkId,
                                            values=tuple(vals), authored=authored,
                                            text=shown)
                for v in vals:
                    if isinstance(v, str) and v.strip():
                        yield "notes", NoteItem(reference=ref, text=v, date=authored,
                                                content_type="text/x-questionnaire-answer")
            if it.item:
                yield from walk(it.item, f"{fld}.item", depth + 1)

    yield from walk(items, "item")


def _show(v: Any) -> str:
    if isinstance(v, Coding):
        return v.display or v.code
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


_CONVERTERS: dict[type[FBase], Any] = {
    Condition: _condition,
    Observation: _observation,
    _MedicationUse: _medication,
    Procedure: _procedure,
    AllergyIntolerance: _allergy,
    DocumentReference: _document,
    QuestionnaireResponse: _questionnaire_response,
}
for _cls in _MedicationUse.__subclasses__():
    _CONVERTERS[_cls] = _medication


def _med_code(res: Any) -> FCodeableConcept | None:
    """A medication use's own code (None, so kept here, when it has a ``medicationReference``:
    that is resolved, and filtered, in ``_medication``)."""
    if res.medicationReference is not None:
        return None
    return cast(FCodeableConcept | None, res.medicationCodeableConcept)


def _code(res: Any) -> FCodeableConcept | None:
    return cast(FCodeableConcept | None, res.code)


def _may_warn(res: Any) -> bool:
    """Would converting this record warn (``_condition``: an onset given only as text)? Such a
    record is converted for its warning even when no rule reads it, so an assessment's
    warnings do not depend on whether its records were filtered."""
    return type(res) is Condition and res.onsetString is not None


# type -> (its code, record kind, keep it without a known code: see _wanted)
_CODE_OF: dict[type[FBase], tuple[Any, str, bool]] = {
    Condition: (_code, "condition", True),
    Observation: (_code, "observation", False),
    Procedure: (_code, "procedure", False),
    AllergyIntolerance: (_code, "allergy", True),
}
for _cls in _MedicationUse.__subclasses__():
    _CODE_OF[_cls] = (_med_code, "medication", True)


def _patient_clash(a: Any, b: Any) -> set[str]:
    """Fields on which two Patient resources of one id disagree (both recorded, different)."""
    out = set()
    ga, gb = (a.gender or "").strip().lower(), (b.gender or "").strip().lower()
    if ga and gb and ga != gb:
        out.add("gender")
    if a.birthDate and b.birthDate and a.birthDate.strip() != b.birthDate.strip():
        out.add("birthDate")
    return out


def build_records(results: Iterable[ReadResult],
                  ruleset: Any = None) -> tuple[list[PatientRecord], list[InputError]]:
    """Records for every patient in ``results`` (sorted by id) and the sources rejected;
    with a ruleset, only what it can read is materialised."""
    b = RecordBuilder.for_ruleset(ruleset) if ruleset is not None else RecordBuilder()
    for r in results:
        b.add(r)
    return b.finish(), b.errors
