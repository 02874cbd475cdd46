"""Published VSAC value sets → the expansions the knowledge base ships.

A value set in ``knowledge/valuesets/<id>.yaml`` names its published sources (``sources``: OID,
version, title, the code systems taken, and how each is narrowed: ``keep`` / ``drop``, every
drop with its reason). :func:`build` applies that to the published expansion and gives the
:class:`~msc_screen.terminology.expansion.Expansion` written to
``valuesets/expansions/<id>.tsv``; :func:`regenerate` does it for every set, so a yearly VSAC
update is ``msc-screen rules import-vsac --vsac FILE`` and a reviewed diff. Nothing here knows a
code or a clinical choice: those are in the YAML.

Published files read: FHIR R4 ``ValueSet`` resources with an ``expansion`` (as VSAC's FHIR API
and the eCQM content repositories publish them), one per line (NDJSON, optionally gzipped), a
single JSON ValueSet or Bundle of them, or a directory of such files.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .expansion import GENERATOR, DroppedRow, Expansion, Row, SourceRef, render
from .systems import ICD10CM, system_key

if TYPE_CHECKING:
    from ..knowledge.schema import SourceSelect, ValueSetDef

# ICD-10-PCS (procedures) shares a URI family with ICD-10-CM in some spellings; keep it apart so
# a PCS code is never read as a diagnosis.
ICD10PCS = "icd10pcs"
_PCS_URIS = frozenset({"http://www.cms.gov/medicare/coding/icd10", "urn:oid:2.16.840.1.113883.6.4",
                       "http://hl7.org/fhir/sid/icd-10-pcs"})


class VsacError(ValueError):
    """An unreadable published file, or a value set whose sources do not fit it."""


@dataclass(frozen=True, slots=True)
class PublishedCode:
    system: str  # short key (snomed, icd10cm, loinc, rxnorm, icd10pcs, or the URI when unknown)
    version: str
    code: str
    display: str


@dataclass(frozen=True, slots=True)
class PublishedValueSet:
    oid: str
    version: str
    title: str
    url: str
    codes: tuple[PublishedCode, ...]


def _key(uri: str) -> str:
    low = uri.strip().lower().rstrip("/")
    if low in _PCS_URIS:
        return ICD10PCS
    return system_key(uri) or uri


def _from_resource(res: dict[str, Any], where: str) -> PublishedValueSet:
    oid = str(res.get("id") or "")
    if not oid:
        raise VsacError(f"{where}: ValueSet without an id")
    contains = (res.get("expansion") or {}).get("contains")
    if contains is None:
        raise VsacError(f"{where}: ValueSet {oid} has no expansion.contains (only expanded "
                        "value sets can be imported)")
    codes = tuple(PublishedCode(_key(c.get("system", "")), str(c.get("version") or ""),
                                str(c["code"]), str(c.get("display") or ""))
                  for c in _flatten(contains))
    return PublishedValueSet(oid, str(res.get("version") or ""), str(res.get("title") or ""),
                             str(res.get("url") or ""), codes)


def _flatten(contains: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for c in contains:
        if "code" in c:
            yield c
        yield from _flatten(c.get("contains") or ())


def _resources(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict) and obj.get("resourceType") == "Bundle":
        for e in obj.get("entry") or ():
            yield from _resources(e.get("resource"))
    elif isinstance(obj, dict) and obj.get("resourceType") == "ValueSet":
        yield obj


def _read_file(path: Path) -> Iterator[PublishedValueSet]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8")
    name = path.name.removesuffix(".gz")
    if name.endswith(".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise VsacError(f"{path}:{n}: not JSON ({exc.msg})") from None
                for res in _resources(obj):
                    yield _from_resource(res, f"{path}:{n}")
        return
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VsacError(f"{path}: not JSON ({exc.msg})") from None
    for res in _resources(obj):
        yield _from_resource(res, str(path))


def read_published(path: Path) -> dict[str, PublishedValueSet]:
    """Every expanded ValueSet in ``path`` (a file or a directory of them), by OID."""
    if not path.exists():
        raise VsacError(f"{path}: no such file or directory")
    files = (sorted(p for p in path.rglob("*") if p.is_file()
                    and p.name.removesuffix(".gz").endswith((".json", ".ndjson")))
             if path.is_dir() else [path])
    out: dict[str, PublishedValueSet] = {}
    for f in files:
        for vs in _read_file(f):
            if vs.oid in out and out[vs.oid] != vs:
                raise VsacError(f"{f}: value set {vs.oid} appears twice with different content")
            out[vs.oid] = vs
    if not out:
        raise VsacError(f"{path}: no expanded FHIR ValueSet found")
    return out


# ------------------------------------------------------------------------------- selection


def _nodot(code: str) -> str:
    return code.replace(".", "").strip().upper()


class _Matcher:
    """A ``SourceSelect`` compiled: codes, ICD-10-CM items with descendants, display regexes."""

    def __init__(self, sel: SourceSelect, where: str) -> None:
        self.codes = {c.strip() for c in sel.codes} | {_nodot(c) for c in sel.codes}
        self.prefixes: list[str] = []
        self.ranges: list[tuple[str, str]] = []
        for item in sel.icd10cm:
            lo, sep, hi = item.partition("-")
            if sep:
                self.ranges.append((_nodot(lo)[:3], _nodot(hi)[:3]))
            else:
                self.prefixes.append(_nodot(item))
        try:
            self.display = [re.compile(p, re.IGNORECASE) for p in sel.display]
        except re.error as exc:
            raise VsacError(f"{where}: bad display pattern ({exc})") from None

    def __call__(self, c: PublishedCode) -> bool:
        if c.code in self.codes:
            return True
        if c.system == ICD10CM:
            nd = _nodot(c.code)
            if nd in self.codes or any(nd.startswith(p) for p in self.prefixes):
                return True
            if any(lo <= nd[:3] <= hi for lo, hi in self.ranges):
                return True
        return any(p.search(c.display) for p in self.display)


def build(vs: ValueSetDef, published: dict[str, PublishedValueSet]) -> Expansion:
    """The expansion of ``vs`` from ``published``. Raises :class:`VsacError` listing every
    problem: a source missing or at another version than declared, a listed code the source does
    not hold, a drop that removes nothing, a kept ICD-10-CM code whose descendant was dropped
    (the engine matches descendants, so the drop would not hold)."""
    problems: list[str] = []
    listed: dict[str, tuple[str, dict[str, bool], list[int]]] = {}
    rows: dict[tuple[str, str], tuple[PublishedCode, list[str]]] = {}
    dropped: dict[tuple[str, str, str], DroppedRow] = {}
    refs: list[SourceRef] = []
    drops: list[tuple[str, str]] = []
    for i, src in enumerate(vs.sources, 1):
        where = f"valuesets/{vs.id}.yaml [sources[{i - 1}] {src.oid}]"
        pv = published.get(src.oid)
        if pv is None:
            problems.append(f"{where}: not in the published file")
            refs.append(SourceRef(src.oid, src.version, src.title))
            continue
        if pv.version != src.version:
            problems.append(f"{where}: the published file has version {pv.version}, the set "
                            f"declares {src.version}; review the new version, then update "
                            "`version` (and the narrowing) in the YAML")
        if pv.title != src.title:
            problems.append(f"{where}: published title is {pv.title!r}, the set says "
                            f"{src.title!r}")
        keep = _Matcher(src.keep, where) if src.keep is not None else None
        rules = [(f"{i}.{j}", _Matcher(d, where), d) for j, d in enumerate(src.drop, 1)]
        for label, _, d in rules:
            if not (d.reason or "").strip():
                problems.append(f"{where}: drop {label} gives no reason")
            drops.append((label, d.reason or ""))
        hits = {rule: 0 for rule, _, _ in rules}
        taken: dict[str, int] = {}
        left: dict[str, int] = {}
        unselected = 0
        present = {c.code for c in pv.codes} | {_nodot(c.code) for c in pv.codes
                                                  if c.system == ICD10CM}
        # a narrowing rule may be shared by several sources (a YAML anchor): its listed codes
        # must be in one of them, and it must remove a code from one of them
        for sel, label in ([(src.keep, f"{i}.keep")] if src.keep else []) + [
                (d, r) for r, _, d in rules]:
            key = repr(sel)
            seen = listed.setdefault(key, (label, {c: False for c in sel.codes}, [0]))[1]
            for code in sel.codes:
                seen[code] = seen[code] or code in present or _nodot(code) in present
        for c in pv.codes:
            if c.system not in src.systems:
                left[c.system] = left.get(c.system, 0) + 1
                continue
            taken[c.system] = taken.get(c.system, 0) + 1
            if keep is not None and not keep(c):
                unselected += 1
                continue
            rule: str | None = None
            for r, m, _ in rules:
                if m(c):
                    rule = r
                    hits[r] += 1
                    break
            if rule is not None:
                dropped[(c.system, c.code, rule)] = DroppedRow(c.system, c.code, c.version,
                                                               c.display, str(i), rule)
                continue
            hit = rows.get((c.system, c.code))
            if hit is None:
                rows[(c.system, c.code)] = (c, [str(i)])
            else:
                if hit[0].version != c.version and c.version > hit[0].version:
                    rows[(c.system, c.code)] = (c, hit[1])
                rows[(c.system, c.code)][1].append(str(i))
        for r, _, d in rules:
            listed[repr(d)][2][0] += hits[r]
        for s in src.systems:
            if s not in taken:
                problems.append(f"{where}: the source holds no {s} code")
        if not any(str(i) in srcs for _, srcs in rows.values()):
            problems.append(f"{where}: contributes no code after narrowing (remove the source?)")
        desc = "taken: " + ", ".join(f"{k} {v}" for k, v in sorted(taken.items()))
        if keep is not None:
            desc += f"; not selected by keep: {unselected}"
        if left:
            desc += "; left out: " + ", ".join(f"{k} {v}" for k, v in sorted(left.items()))
        refs.append(SourceRef(src.oid, src.version, src.title, desc))
    for label, seen, removed in listed.values():
        for code, ok in seen.items():
            if not ok:
                problems.append(f"valuesets/{vs.id}.yaml: {label} lists {code}, which no source "
                                "using that rule holds")
        if not label.endswith(".keep") and removed[0] == 0:
            problems.append(f"valuesets/{vs.id}.yaml: drop {label} removes no code (stale "
                            "narrowing?)")
    kept_keys = set(rows)
    for (system, code, rule) in sorted(dropped):
        if (system, code) in kept_keys:
            problems.append(f"valuesets/{vs.id}.yaml: {system} {code} is dropped by rule {rule} "
                            f"but kept from source(s) {','.join(rows[(system, code)][1])}: "
                            "narrow every source the same way")
    kept_icd = {_nodot(c): c for s, c in kept_keys if s == ICD10CM}
    for (system, code, rule), _ in sorted(dropped.items()):
        if system != ICD10CM:
            continue
        nd = _nodot(code)
        for n in range(3, len(nd)):
            parent = kept_icd.get(nd[:n])
            if parent is not None:
                problems.append(f"valuesets/{vs.id}.yaml: kept ICD-10-CM {parent} is a parent of "
                                f"{code} (dropped by {rule}); the engine matches descendants, so "
                                f"drop {parent} too")
    if problems:
        raise VsacError("\n".join(problems))
    return Expansion(
        valueset=vs.id,
        generator=GENERATOR,
        sources=tuple(refs),
        drops=tuple(drops),
        rows=tuple(Row(c.system, c.code, c.version, c.display, ",".join(srcs))
                   for (_, _), (c, srcs) in sorted(rows.items())),
        dropped=tuple(sorted(dropped.values(), key=lambda d: (d.system, d.code, d.rule))),
        content_sha256="",
    )


def regenerate(valuesets: Iterable[ValueSetDef], published: dict[str, PublishedValueSet]
               ) -> dict[str, bytes]:
    """File bytes of every set with published sources, by set id. Raises :class:`VsacError`
    with the problems of every set (not just the first)."""
    out: dict[str, bytes] = {}
    problems: list[str] = []
    for vs in sorted(valuesets, key=lambda v: v.id):
        if not vs.sources:
            continue
        try:
            out[vs.id] = render(build(vs, published))
        except VsacError as exc:
            problems.append(str(exc))
    if problems:
        raise VsacError("\n".join(problems))
    return out


def write(expansions_dir: Path, files: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """Write ``files`` as ``<id>.tsv`` into ``expansions_dir``; remove expansion files no set
    claims any more. Returns (written, removed) file names; unchanged files are not touched."""
    expansions_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for vid, data in sorted(files.items()):
        p = expansions_dir / f"{vid}.tsv"
        if not p.exists() or p.read_bytes() != data:
            p.write_bytes(data)
            written.append(p.name)
    removed: list[str] = []
    for p in sorted(expansions_dir.glob("*.tsv")):
        if p.stem not in files:
            p.unlink()
            removed.append(p.name)
    return written, removed
