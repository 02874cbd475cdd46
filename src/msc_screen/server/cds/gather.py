"""One hook call's prefetch keys: what the EHR sent, what fhirServer answered, and what that
says about each kind of data (README, CDS Hooks: how prefetch keys become data coverage)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...model import KindCoverage, PatientRecord
from .fhir_fetch import KeyFetch
from .prefetch import ValueRead, named, read_value


@dataclass
class KeyState:
    """One prefetch key: what the EHR sent, what fhirServer answered, and what that says about
    its kind of data."""

    key: str
    kind: str | None  # knowledge/coverage.yaml kind (services.json "coverage")
    search: bool  # a search (a Bundle, complete when it ran), not a read of one resource
    answered: bool = False  # data, null, or a search that ran (even if it found nothing)
    empty: bool = False  # null: the EHR has no data
    paged: bool = False  # a paged prefetch whose next pages came from fhirServer
    missing: str | None = None  # not sent and not fetched: why
    prefetched: ValueRead | None = None
    fetched: list[ValueRead] = field(default_factory=list)
    replaced: ValueRead | None = None  # an incomplete prefetch that a refetch replaced
    problems: list[str] = field(default_factory=list)  # the key's own (fetch) problems

    @property
    def reads(self) -> list[ValueRead]:
        return ([self.prefetched] if self.prefetched is not None else []) + self.fetched

    @property
    def kept(self) -> int:
        return sum(v.kept for v in self.reads)

    def settle_fetch(self, kf: KeyFetch, patient_id: str) -> None:
        n = len(kf.pages)
        pages = [read_value(page, f"fhirServer:{self.key}" if n == 1 else
                            f"fhirServer:{self.key}[page {i + 1}]", patient_id)
                 for i, page in enumerate(kf.pages)]
        for v in pages:
            v.next_url = None  # the fetch followed (or refused) the links itself
        if self.paged:
            self.fetched = pages
            if kf.problem:
                self.problems.append(f"fhirServer: {kf.problem}")
        elif self.prefetched is not None:  # a refetch of an incomplete prefetch
            if kf.problem is None and pages and not any(v.problems for v in pages):
                self.replaced, self.prefetched, self.fetched = self.prefetched, None, pages
            else:
                why = kf.problem or "; ".join(p for v in pages for p in v.problems)
                self.problems.append(f"refetch from fhirServer failed ({why or 'no answer'})")
        else:
            self.fetched = pages
            self.answered = kf.problem is None
            if kf.problem:
                self.problems.append(f"fhirServer: {kf.problem}")

    def all_problems(self) -> list[str]:
        out = [f"{'prefetch' if v.source.startswith('prefetch.') else 'fhirServer'}: {p}"
               for v in self.reads for p in v.problems]
        return list(dict.fromkeys(out + self.problems))

    def status(self) -> str:
        if self.all_problems():
            return "incomplete"
        return "provided" if self.answered else "not-provided"

    @property
    def usable(self) -> bool:
        return self.kept > 0 or self.status() == "provided"

    def reason(self) -> str:
        return "; ".join(self.all_problems()) or self.missing or (
            "null (no data)" if self.empty else "searched")

    def foreign(self) -> list[tuple[str, list[str]]]:
        vs = ([self.replaced] if self.replaced is not None else []) + self.reads
        return [(v.source, v.foreign) for v in vs if v.foreign]

    def unreadable(self) -> list[tuple[str, list[str]]]:
        return [(v.source, v.unreadable) for v in self.reads if v.unreadable]


@dataclass
class Gathered:
    records: list[PatientRecord]
    states: dict[str, KeyState]
    declared: dict[str, KindCoverage] = field(default_factory=dict)

    def foreign(self) -> list[str]:
        """``prefetch.conditions: Condition/a, Condition/b`` per value holding them."""
        return [f"{src}: {', '.join(named(items))}" for st in self.states.values()
                for src, items in st.foreign()]

    def unreadable(self) -> list[str]:
        return [f"{src}: {item}" for st in self.states.values()
                for src, items in st.unreadable() for item in named(items)]


def declared_coverage(states: dict[str, KeyState]) -> dict[str, KindCoverage]:
    """Per kind of data, what its prefetch keys say: any key incomplete → incomplete (a
    kind searched by several keys, some not sent, too); every key answered → provided, even
    when the search found nothing (a read, such as the Patient, provides only what it
    returns); none answered → not provided."""
    by_kind: dict[str, list[KeyState]] = {}
    for st in states.values():
        if st.kind is not None:
            by_kind.setdefault(st.kind, []).append(st)
    out: dict[str, KindCoverage] = {}
    for kind, sts in by_kind.items():
        status = {st.key: st.status() for st in sts}
        short = [st for st in sts if status[st.key] != "provided"]
        why = "; ".join(f"{st.key}: {st.reason()}" for st in short)
        if any(v == "incomplete" for v in status.values()) or (
                short and len(short) < len(sts)):
            out[kind] = KindCoverage("incomplete", why)
        elif short:
            out[kind] = KindCoverage("not-provided", why)
        elif all(st.search for st in sts):
            out[kind] = KindCoverage("provided", "; ".join(f"{st.key}: searched"
                                                           for st in sts))
        elif not any(st.kept for st in sts):
            out[kind] = KindCoverage("not-provided", "; ".join(
                f"{st.key}: {'null' if st.empty else 'nothing returned'}" for st in sts))
    return out
