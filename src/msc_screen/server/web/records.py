"""One patient's engine input from what the clinic holds: uploaded FHIR files, the
questionnaire response and the minimal demographics typed in by staff; and, for an upload,
who the file says it is about.

Uploaded files may name the patient with their own Patient id; everything read for a clinic
patient belongs to that patient, so the records are merged under the clinic's id — with
what each source held (``seen``) and what the clinic knows about its completeness
(``declared``), so that the assessment's data coverage is the union of its sources. A file is
only read here once staff accepted it as this patient's (``compare`` says what differs). The
engine decides everything; this only gathers the facts.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from ...engine.coverage import declare_complete, record_coverage
from ...errors import InputError
from ...fhir.reader import read_bytes
from ...fhir.record import RecordBuilder
from ...knowledge.compiled import CompiledRuleset
from ...model import KindCoverage, PatientRecord

_LISTS = ("conditions", "observations", "medications", "procedures", "allergies", "answers",
          "notes", "warnings", "sources")
COMPLETE_REASON = "declared complete: staff marked an upload as the patient's complete record"


@dataclass
class Gathered:
    record: PatientRecord
    errors: list[InputError] = field(default_factory=list)


@dataclass(frozen=True)
class Source:
    """An accepted upload as a screening reads it; ``complete``: staff marked it as the
    patient's complete record, so its kinds of data are declared complete."""

    name: str
    data: bytes
    complete: bool = False


def demographics_resource(fhir_id: str, gender: str | None, birth_date: str | None
                          ) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "id": fhir_id}
    if gender:
        res["gender"] = gender
    if birth_date:
        res["birthDate"] = birth_date
    return res


def check_upload(data: bytes, filename: str) -> tuple[int, list[InputError]]:
    """How many patients an upload holds, and the reader's errors (named by file/line/field)."""
    b = RecordBuilder()
    b.add(read_bytes(data, filename))
    records = b.finish()
    return len(records), list(b.errors)


def merge_declared(into: dict[str, KindCoverage], other: dict[str, KindCoverage]) -> None:
    """One source's coverage declarations into the merged record's: ``incomplete`` (with
    every source's reason) wins over ``provided``, which wins over ``not-provided`` — a part
    known to be missing is never hidden by another part that is complete."""
    rank = {"incomplete": 2, "provided": 1, "not-provided": 0}
    for kind, cov in other.items():
        cur = into.get(kind)
        if cur is None or rank[cov.status] > rank[cur.status]:
            into[kind] = cov
        elif cov.status == cur.status and cov.reason and cov.reason != cur.reason:
            reasons = [r for r in (cur.reason, cov.reason) if r]
            into[kind] = KindCoverage(cur.status, "; ".join(dict.fromkeys(reasons)))


def gather(fhir_id: str, gender: str | None, birth_date: str | None,
           uploads: Iterable[Source | tuple[str, bytes]], responses: Iterable[dict[str, Any]],
           complete_kinds: Sequence[str] = ()) -> Gathered:
    """The clinic patient's record: every accepted upload, the completed questionnaire
    responses and the clinic's own demographics, under the clinic's Patient id.

    ``complete_kinds``: the kinds an upload marked complete declares complete
    (``complete_kinds(ruleset, "all")``). The clinic's demographics are the patient's (typed in
    by staff); an upload's sex or birth date fills in what the clinic left blank, and one that
    disagrees is named in a warning. Any source saying the patient died is kept."""
    sources = [u if isinstance(u, Source) else Source(*u) for u in uploads]
    b = RecordBuilder()
    for src in sources:
        b.add(read_bytes(src.data, src.name))
    qr_bundle = {"resourceType": "Bundle", "type": "collection",
                 "entry": [{"resource": r} for r in responses]}
    if qr_bundle["entry"]:
        b.add(read_bytes(orjson.dumps(qr_bundle), "questionnaire"))
    b.add(read_bytes(orjson.dumps(demographics_resource(fhir_id, gender, birth_date)),
                     "demographics"))
    records = b.finish()
    complete = {s.name for s in sources if s.complete}
    if complete and complete_kinds:
        declare_complete([r for r in records if complete & set(r.sources)],
                         tuple(complete_kinds), COMPLETE_REASON)
    clinic = next((r for r in records if r.id == fhir_id), None)
    others = [r for r in records if r is not clinic]
    merged = PatientRecord(id=fhir_id)
    for r in [*([clinic] if clinic else []), *others]:
        _merge_demographics(merged, r, is_clinic=r is clinic)
        for name in _LISTS:
            getattr(merged, name).extend(getattr(r, name))
        for k, n in r.seen.items():
            merged.seen[k] = merged.seen.get(k, 0) + n
        merge_declared(merged.declared, r.declared)
    return Gathered(merged, list(b.errors))


def _merge_demographics(merged: PatientRecord, r: PatientRecord, *, is_clinic: bool) -> None:
    if not r.has_patient_resource:
        return
    merged.has_patient_resource = True
    where = "an uploaded record" if not is_clinic else "the clinic"
    if r.gender:
        if merged.gender is None:
            merged.gender = r.gender
        elif merged.gender != r.gender:
            merged.warnings.append(f"sex differs between sources: {merged.gender} (the clinic) "
                                   f"and {r.gender} ({where}); the clinic's is used")
    if r.birth_date is not None:
        if merged.birth_date is None:
            merged.birth_date = r.birth_date
        elif merged.birth_date != r.birth_date:
            merged.warnings.append("birth date differs between sources; the clinic's is used")
    if r.deceased and not merged.deceased:
        merged.deceased, merged.deceased_date = True, r.deceased_date


# ---------------------------------------------------------------------------------------------
# who a file is about

@dataclass(frozen=True)
class PersonShown:
    """What a file's Patient resource says about who it is."""

    fhir_id: str | None
    names: tuple[dict[str, Any], ...]  # {"text", "family", "given": [...], "use"}
    birth_date: str | None
    gender: str | None
    identifiers: tuple[tuple[str | None, str], ...]  # (system, value)
    deceased: str | None  # None (not recorded as deceased), "yes", or the date

    def display_names(self) -> list[str]:
        return [_shown_name(n) for n in self.names if _shown_name(n)]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.fhir_id, "names": self.display_names(),
                "name_parts": list(self.names), "birth_date": self.birth_date,
                "gender": self.gender,
                "identifiers": [{"system": s, "value": v} for s, v in self.identifiers],
                "deceased": self.deceased}


@dataclass(frozen=True)
class Difference:
    field: str  # patient | name | birth-date | sex | identifier | deceased | identity
    clinic: str
    file: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "clinic": self.clinic, "file": self.file}


@dataclass
class Inspected:
    """What an upload holds, before it is accepted: the reader's errors, how many patients,
    the Patient it names (None when it holds no Patient resource) and, per kind of data the
    rules read, how many resources."""

    patients: int
    errors: list[InputError]
    person: PersonShown | None = None
    people: int = 0  # Patient resources in the file
    held: dict[str, int] = field(default_factory=dict)


class _Kind(msgspec.Struct):
    resourceType: str | None = None


_KIND = msgspec.json.Decoder(_Kind)


def inspect_upload(data: bytes, filename: str, ruleset: CompiledRuleset) -> Inspected:
    b = RecordBuilder()
    b.add(read_bytes(data, filename))
    records = b.finish()
    got = Inspected(len(records), list(b.errors))
    if got.errors:
        return got
    held: dict[str, int] = {}
    for rec in records:
        for kind, cov in record_coverage(rec, ruleset).items():
            if cov.count and kind != "demographics":
                held[kind] = held.get(kind, 0) + cov.count
    got.held = held
    people = patients_in(data)
    got.people = len(people)
    if len(people) == 1:
        got.person = people[0]
    return got


def patients_in(data: bytes) -> list[PersonShown]:
    """The Patient resources of a Bundle, a single resource or NDJSON (gzipped or not). The
    reader has accepted the file; anything unexpected here only loses a field (so the
    comparison asks staff instead of matching)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            return []
    out: list[dict[str, Any]] = []
    stripped = data.strip()
    try:
        tops = [orjson.loads(stripped)]
    except orjson.JSONDecodeError:
        tops = []
        for line in stripped.splitlines():
            if not line.strip():
                continue
            try:
                if _KIND.decode(line).resourceType not in ("Patient", "Bundle"):
                    continue  # most lines of an export: not parsed twice
                tops.append(orjson.loads(line))
            except (msgspec.DecodeError, orjson.JSONDecodeError):
                continue
    for top in tops:
        _collect_patients(top, out, 0)
    return [_person(p) for p in out]


def _collect_patients(res: Any, out: list[dict[str, Any]], depth: int) -> None:
    if not isinstance(res, dict) or depth > 8:
        return
    kind = res.get("resourceType")
    if kind == "Patient":
        out.append(res)
    elif kind == "Bundle":
        for e in res.get("entry") or ():
            if isinstance(e, dict):
                _collect_patients(e.get("resource"), out, depth + 1)


def _text(v: Any) -> str | None:
    return v.strip() or None if isinstance(v, str) else None


def _person(res: dict[str, Any]) -> PersonShown:
    names = []
    for n in res.get("name") or ():
        if not isinstance(n, dict):
            continue
        given = [g.strip() for g in n.get("given") or () if isinstance(g, str) and g.strip()]
        names.append({"text": _text(n.get("text")), "family": _text(n.get("family")),
                      "given": given, "use": _text(n.get("use"))})
    idents = []
    for i in res.get("identifier") or ():
        if isinstance(i, dict) and _text(i.get("value")):
            idents.append((_text(i.get("system")), str(_text(i.get("value")))))
    deceased = None
    if isinstance(res.get("deceasedDateTime"), str) and res["deceasedDateTime"].strip():
        deceased = res["deceasedDateTime"].strip()
    elif res.get("deceasedBoolean") is True:
        deceased = "yes"
    gender = _text(res.get("gender"))
    return PersonShown(fhir_id=_text(res.get("id")), names=tuple(names),
                       birth_date=_text(res.get("birthDate")),
                       gender=gender.lower() if gender else None,
                       identifiers=tuple(idents), deceased=deceased)


def _shown_name(n: dict[str, Any]) -> str:
    if n.get("text"):
        return str(n["text"])
    return " ".join([*n.get("given", []), n.get("family") or ""]).strip()


def name_tokens(s: str) -> frozenset[str]:
    """Words of a name, case- and accent-insensitive ("José  O'Neil" -> {jose, oneil})."""
    plain = unicodedata.normalize("NFKD", s)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    plain = re.sub(r"['’`]", "", plain)
    return frozenset(t for t in re.split(r"[^\w]+", plain) if t)


def name_matches(clinic_name: str, n: dict[str, Any]) -> bool:
    """The clinic's name for the patient against one of the file's names: every word of the
    family name and at least one given name (or the whole text name) among the clinic's
    words. A middle name or initial the clinic left out does not matter; another surname
    does."""
    have = name_tokens(clinic_name)
    if not have:
        return False
    family = name_tokens(n.get("family") or "")
    given = frozenset().union(*(name_tokens(g) for g in n.get("given", [])))
    if family:
        return family <= have and (not given or bool(given & have))
    text = name_tokens(n.get("text") or "")
    return bool(text) and (text <= have or have <= text)


def _same_date(a: str, b: str) -> bool:
    """Equal at the precision both have (FHIR allows YYYY and YYYY-MM)."""
    a, b = a[:10], b[:10]
    n = min(len(a), len(b))
    return a[:n] == b[:n]


@dataclass(frozen=True)
class ClinicPerson:
    """Who the clinic patient is: the staff-entered demographics, an optional identifier
    ("value" or "system|value") and the identifiers of files already accepted for them."""

    name: str
    birth_date: str | None
    gender: str | None
    identifier: str | None = None
    known_identifiers: tuple[tuple[str | None, str, str], ...] = ()  # (system, value, file)


def _split_identifier(s: str) -> tuple[str | None, str]:
    if "|" in s:
        system, _, value = s.partition("|")
        return system.strip() or None, value.strip()
    return None, s.strip()


def compare(clinic: ClinicPerson, person: PersonShown | None) -> list[Difference]:
    """What differs between the clinic patient and a file's Patient; empty when the file is
    plainly theirs. A file with no Patient, a Patient recorded as deceased, or one with nothing
    that matches (no name, birth date or identifier in common) always needs staff to confirm."""
    if person is None:
        return [Difference("patient", clinic.name,
                           "no Patient resource: the file does not say whose records it holds")]
    diffs: list[Difference] = []
    matched = False
    names = [n for n in person.names if _shown_name(n)]
    if names:
        if any(name_matches(clinic.name, n) for n in names):
            matched = True
        else:
            diffs.append(Difference("name", clinic.name, "; ".join(person.display_names())))
    if clinic.birth_date and person.birth_date:
        if _same_date(clinic.birth_date, person.birth_date):
            matched = True
        else:
            diffs.append(Difference("birth-date", clinic.birth_date, person.birth_date))
    if (clinic.gender and person.gender and "unknown" not in (clinic.gender, person.gender)
            and clinic.gender != person.gender):
        diffs.append(Difference("sex", clinic.gender, person.gender))
    file_ids = person.identifiers
    shown_ids = "; ".join(f"{s} {v}" if s else v for s, v in file_ids) or "none"
    if clinic.identifier and file_ids:
        sys_, val = _split_identifier(clinic.identifier)
        same = [v for s, v in file_ids if sys_ is None or s is None or s == sys_]
        if val in same:
            matched = True
        elif same or sys_ is None:
            diffs.append(Difference("identifier", clinic.identifier, shown_ids))
    for s, v in file_ids:
        if s is None:
            continue
        earlier = [(v2, f) for s2, v2, f in clinic.known_identifiers if s2 == s]
        if not earlier:
            continue
        if any(v2 == v for v2, _ in earlier):
            matched = True
        else:
            v2, f = earlier[0]
            diffs.append(Difference("identifier", f"{s} {v2} (in {f})", f"{s} {v}"))
    if person.deceased:
        when = "" if person.deceased == "yes" else f" on {person.deceased[:10]}"
        diffs.append(Difference("deceased", "a living prospective patient",
                                f"recorded as deceased{when}"))
    if not matched and not diffs:
        diffs.append(Difference("identity", clinic.name,
                                "nothing to compare: no name, birth date or identifier that "
                                "the clinic holds"))
    return diffs
