"""Reading one prefetch value (or one page fetched from ``fhirServer``) for one patient.

The REST API and the CLI read a file whole or reject it whole. A hook call must not: one
malformed resource would leave the EHR with nothing. So each value is read on its own and
judged as data coverage:

- an OperationOutcome instead of data, or a Bundle with OperationOutcome entries carrying
  errors (``search.mode=outcome``), makes the key incomplete, with what the EHR said;
- resources whose subject/patient is not ``context.patientId`` are left out (never screened)
  and named by type/id; the key is then incomplete (the search that returned them was not a
  search for this patient alone);
- a resource that cannot be read is left out and named with the reader's reason; the rest of
  the value is kept. The fast path is one decode into the reader's own structs (what
  ``read_bytes`` would give, plus links and outcomes); the slow one, entry by entry and
  resource by resource, runs only when the value as a whole is rejected.

Nothing here logs: reasons go to the cards, which the clinician reads.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

import msgspec

from ...errors import InputError
from ...fhir.reader import ReadResult, read_bytes
from ...fhir.record import RecordBuilder, patient_id_of
from ...fhir.structs import READ_TYPES, AnyResource, FBase, FClinical, Patient

_MAX_TEXT = 200
_MAX_NAMED = 50  # resources named per key in a card


class _EnvResource(msgspec.Struct):
    resourceType: Any = None
    issue: Any = None


class _EnvEntry(msgspec.Struct):
    """An entry read on its own (the slow path): its type and issues only."""

    resource: _EnvResource | None = None


# One decode for the fast path: the reader's own resource structs (so the record builder gets
# exactly what ``read_bytes`` would give it), plus what says whether a value is data at all —
# a Bundle's links, an OperationOutcome's issues (alone, or as an entry).
_OTHER = tuple(t for t in typing.get_args(AnyResource)
               if t.__name__ not in ("Bundle", "OperationOutcome"))


class _Outcome(FBase, tag="OperationOutcome"):
    issue: Any = None


class _PageEntry(msgspec.Struct):
    fullUrl: str | None = None
    resource: _Value | None = None  # an outcome entry (search.mode=outcome) is an _Outcome


class _Page(FBase, tag="Bundle"):
    link: Any = None
    entry: list[_PageEntry] | None = None


_Value = Union[(_Page, _Outcome, *_OTHER)]  # type: ignore[valid-type]
_VALUE = msgspec.json.Decoder(_Value)
_KEPT = frozenset(t for t in _OTHER if t.__name__ in READ_TYPES)


class _RawEntries(msgspec.Struct):
    resourceType: Any = None
    entry: list[msgspec.Raw] | None = None


class _Head(msgspec.Struct):
    resourceType: Any = None
    id: Any = None


class _EntryHead(msgspec.Struct):
    resource: _Head | None = None


_ENV_ENTRY = msgspec.json.Decoder(_EnvEntry)
_RAW_ENTRIES = msgspec.json.Decoder(_RawEntries)
_ENTRY_HEAD = msgspec.json.Decoder(_EntryHead)
_HEAD = msgspec.json.Decoder(_Head)
_ENTRY_PATH = re.compile(r"^\$\.entry\[0\]\.resource\.?")


@dataclass
class ValueRead:
    """One value: the resources kept (this patient's, readable), and why it is incomplete."""

    source: str
    result: ReadResult
    problems: list[str] = field(default_factory=list)  # why the key is incomplete
    foreign: list[str] = field(default_factory=list)  # Type/id of another patient's resources
    unreadable: list[str] = field(default_factory=list)  # "Type/id: reason", left out
    next_url: str | None = None  # Bundle.link[next], for the caller to follow or not
    kept: int = 0  # resources kept, after the record builder accepted them


def _text(value: Any) -> str:
    s = " ".join(str(value).split())
    return s if len(s) <= _MAX_TEXT else s[: _MAX_TEXT - 1] + "…"


def _issue_text(issue: Any) -> str:
    if not isinstance(issue, dict):
        return "no details"
    details = issue.get("details")
    said = issue.get("diagnostics") or (details.get("text") if isinstance(details, dict)
                                         else None) or issue.get("code") or "no details"
    return f"{issue.get('severity') or 'issue'}: {_text(said)}"


def _errors(issues: Any) -> list[Any]:
    return [i for i in issues or () if isinstance(i, dict)
            and i.get("severity") in ("error", "fatal")] if isinstance(issues, list) else []


def _outcome_problems(entries: list[_EnvEntry]) -> list[str]:
    out = []
    for e in entries:
        r = e.resource
        if r is None or r.resourceType != "OperationOutcome":
            continue
        errs = _errors(r.issue)
        if errs:
            out.append("the search reported an error (" + _issue_text(errs[0]) + ")")
    return list(dict.fromkeys(out))


def _next_link(link: Any) -> str | None:
    for item in link if isinstance(link, list) else ():
        if isinstance(item, dict) and item.get("relation") == "next":
            url = item.get("url")
            if isinstance(url, str) and url:
                return url
    return None


def _describe(resource: str | None, exc: InputError) -> str:
    where = exc.resource or resource or "a resource"
    fld = _ENTRY_PATH.sub("", exc.field or "") if exc.field else ""
    return f"{where}: {exc.reason}" + (f" (field {fld})" if fld and fld != "$" else "")


def _name(head: _Head | None) -> str | None:
    if head is None or not isinstance(head.resourceType, str):
        return None
    rid = head.id if isinstance(head.id, str) and head.id else "?"
    return f"{head.resourceType}/{rid}"


def _entries_one_by_one(data: bytes, source: str, whole: InputError, out: ValueRead) -> None:
    """The value as a whole was rejected by the decoder: read it entry by entry, keep the
    entries that read, name the others."""
    try:
        raw = _RAW_ENTRIES.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raw = None
    if raw is None or raw.resourceType != "Bundle" or raw.entry is None:
        try:
            head: _Head | None = _HEAD.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            head = None
        out.unreadable.append(_describe(_name(head), whole))
        return
    problems: list[str] = []
    for entry in raw.entry:
        part = b'{"resourceType":"Bundle","type":"collection","entry":[' + bytes(entry) + b"]}"
        got = read_bytes(part, source)
        try:
            env = _ENV_ENTRY.decode(entry)
            problems += _outcome_problems([env])
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        if got.error is not None:
            try:
                eh = _ENTRY_HEAD.decode(entry)
                name = _name(eh.resource)
            except (msgspec.DecodeError, msgspec.ValidationError):
                name = None
            out.unreadable.append(_describe(name, got.error))
            continue
        out.result.resources.extend(got.resources)
    out.problems += list(dict.fromkeys(problems))


def _issues_problem(page_entries: list[_PageEntry] | None) -> list[str]:
    return _outcome_problems([_EnvEntry(_EnvResource("OperationOutcome", e.resource.issue))
                              for e in page_entries or () if type(e.resource) is _Outcome])


def _flatten(page: _Page, out: ValueRead) -> None:
    """Bundles flattened as the reader does, keeping the types it keeps."""
    kept = out.result.resources
    out.problems += _issues_problem(page.entry)
    for e in page.entry or ():
        r: Any = e.resource
        t = type(r)
        if t in _KEPT:
            kept.append((r, e.fullUrl, None))
        elif t is _Page:
            _flatten(r, out)


def read_value(data: bytes, source: str, patient_id: str) -> ValueRead:
    """Read one prefetch value or fetched page for ``patient_id`` (see the module doc)."""
    out = ValueRead(source, ReadResult(source))
    try:
        top: Any = _VALUE.decode(data)
    except (msgspec.DecodeError, RecursionError):
        top = None  # the reader says what is wrong, below
    if type(top) is _Outcome:
        errs = _errors(top.issue)
        first = errs[0] if errs else (top.issue[0] if isinstance(top.issue, list)
                                      and top.issue else None)
        out.problems.append("answered with an OperationOutcome instead of data ("
                            + _issue_text(first) + ")")
        return out
    if type(top) is _Page:
        out.next_url = _next_link(top.link)
        try:
            _flatten(top, out)
        except RecursionError:
            top = None
            out.problems.clear()
            out.result = ReadResult(source)
    elif top is not None and type(top) in _KEPT:
        out.result.resources.append((top, None, None))
    if top is None:
        whole = read_bytes(data, source)
        if whole.error is None:
            out.result = whole
        else:
            _entries_one_by_one(data, source, whole.error, out)
    _keep_own(out, patient_id)
    return out


def _keep_own(out: ValueRead, patient_id: str) -> None:
    """Leave out what belongs to another patient, resolving references as the record builder
    does (a fullUrl or ``Patient/<id>`` of a Patient in the same value, any other reference to
    a Patient, else the value's only Patient)."""
    resources = out.result.resources
    url_to_pid: dict[str, str] = {}
    patients: list[str] = []
    for res, full_url, _line in resources:
        if type(res) is Patient:
            pid = res.id or (full_url.rsplit(":", 1)[-1] if full_url else None)
            if pid:
                patients.append(pid)
                if full_url:
                    url_to_pid[full_url] = pid
                url_to_pid[f"Patient/{pid}"] = pid
    distinct = set(patients)
    only = patients[0] if len(distinct) == 1 else None
    kept = []
    for item in resources:
        res = item[0]
        owner: str | None = None
        if type(res) is Patient:
            owner = res.id or (item[1].rsplit(":", 1)[-1] if item[1] else None)
        elif isinstance(res, FClinical):
            ref = res.subject or res.patient
            r = ref.reference if ref is not None else None
            if isinstance(r, str) and r:
                owner = url_to_pid.get(r) or patient_id_of(r) or only
            else:
                owner = only
            if owner is None and len(distinct) > 1:
                # the builder would give it to this patient once the others are left out
                out.unreadable.append(f"{type(res).__name__}/{res.id or '?'}: no subject/patient "
                                      "reference to a Patient, and the value holds several")
                continue
        if owner is not None and owner != patient_id:
            out.foreign.append(f"{type(res).__name__}/{res.id or '?'}")
            continue
        kept.append(item)  # an owner the builder cannot resolve: it says why, below
    out.result.resources = kept
    if out.foreign:
        own = sum(type(r) is not Patient for r, _u, _l in kept)
        out.problems.append(
            f"held only another patient's data ({len(out.foreign)} resource(s), left out)"
            if not own else
            f"held {len(out.foreign)} resource(s) of another patient (left out)")


def add_to_builder(builder: RecordBuilder, value: ValueRead,
                   probe: Callable[[], RecordBuilder]) -> None:
    """Add a value's kept resources to the call's builder; when the builder rejects them as a
    whole, try each resource on its own (beside the value's Patient, as the builder would see
    it) and add only those that convert. ``probe`` makes a fresh builder for those trials."""
    result = value.result
    shared = len(builder.shared_warnings)
    if builder.add(result):
        value.kept = len(result.resources)
    else:
        builder.errors.pop()
        del builder.shared_warnings[shared:]
        good_patients = []
        for item in result.resources:
            if type(item[0]) is Patient:
                trial = probe()
                if trial.add(ReadResult(result.source, [item])):
                    good_patients.append(item)
                else:
                    value.unreadable.append(_describe(None, trial.errors[0]))
        good = list(good_patients)
        for item in result.resources:
            if type(item[0]) is Patient:
                continue
            trial = probe()
            if trial.add(ReadResult(result.source, [*good_patients, item])):
                good.append(item)
            else:
                value.unreadable.append(_describe(None, trial.errors[0]))
        if builder.add(ReadResult(result.source, good)):
            value.kept = len(good)
        else:  # cannot happen for resources that convert one by one; never lose it silently
            err = builder.errors.pop()
            del builder.shared_warnings[shared:]
            value.unreadable.append(_describe(None, err))
            value.kept = 0
    if value.unreadable:
        n = len(value.unreadable)
        value.problems.append(f"{n} resource{'s' if n != 1 else ''} could not be read "
                              "(left out)")


def named(items: list[str]) -> list[str]:
    """At most ``_MAX_NAMED`` names, then a count of the rest."""
    if len(items) <= _MAX_NAMED:
        return items
    return [*items[:_MAX_NAMED], f"… and {len(items) - _MAX_NAMED} more"]
