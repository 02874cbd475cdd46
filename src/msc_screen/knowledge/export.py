"""The knowledge base's value sets as FHIR R4 ``ValueSet`` resources.

Each resource says exactly what the engine matches, so an EHR or a terminology server can load
the same codes:

- ``compose``: every hand-listed and published (expansion) code as a concept, per code system;
  ICD-10-CM categories, non-leaf codes and ranges as ``is-a`` filters (the engine matches a
  listed ICD-10-CM code with all its descendants; a range ``C00-C96`` is one filter per
  3-character category of the official table); the set's exclusions as ``compose.exclude``,
  the same way.
- ``expansion``: every code, ICD-10-CM expanded with all descendants against the official table
  the linter uses, exclusions removed, each code checked against the compiled value set the
  engine runs (so the two cannot disagree).
- ``identifier``: the OIDs of the published VSAC value sets the codes were taken from (narrowed:
  see ``description``); ``url`` and ``version`` are the set's own.

Text patterns and drug ingredient names, which the engine also matches in the text of records,
cannot be codes: ``description`` lists them.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from pathlib import Path
from typing import Any

import orjson

from ..terminology import icd10cm
from ..terminology.systems import ICD10, ICD10CM, canonical_uri, system_key
from .compiled import compile_valueset
from .loader import KnowledgeBase
from .schema import Include, ValueSetDef

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import simple_icd_10_cm as _cm

_ICD = (ICD10CM, ICD10)


def _dotted(code: str) -> str:
    """ICD-10-CM as FHIR writes it: the dot after the 3-character category."""
    c = code.replace(".", "").strip().upper()
    return c if len(c) <= 3 else f"{c[:3]}.{c[3:]}"


def _is_leaf(code: str) -> bool:
    try:
        return bool(_cm.is_leaf(code))
    except Exception:
        return True


def _name(vid: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", vid) if part)


def _icd_filter_values(inc: Include) -> list[str]:
    """The is-a filter values of an ICD-10-CM include: its non-leaf codes and the categories of
    its ranges (leaf codes are listed as concepts instead)."""
    out: list[str] = []
    for r in inc.ranges:
        if "-" not in r:
            out.append(_dotted(r.replace(".", "").upper()))
            continue
        cats = sorted(c for c in icd10cm.expand(r) if len(c) == 3)
        out.extend(cats)
    out += [_dotted(c.code.replace(".", "").upper()) for c in inc.codes
            if not _is_leaf(c.code)]
    return out


def _compose_part(items: list[Include], expansion: list[tuple[str, str, str]]
                  ) -> list[dict[str, Any]]:
    """compose.include (or exclude) entries: concepts per system, then is-a filters."""
    concepts: dict[str, dict[str, str | None]] = {}
    filters: dict[str, list[str]] = {}
    for inc in items:
        key = system_key(inc.system) or inc.system
        if key in _ICD:
            for value in _icd_filter_values(inc):
                filters.setdefault(key, []).append(value)
            for c in inc.codes:
                if _is_leaf(c.code):
                    concepts.setdefault(key, {})[_dotted(c.code.replace(".", "").upper())] = (
                        c.display)
        else:
            for c in inc.codes:
                concepts.setdefault(key, {}).setdefault(c.code, c.display)
    for key, code, display in expansion:
        if key in _ICD and not _is_leaf(code):
            filters.setdefault(key, []).append(_dotted(code.replace(".", "").upper()))
        else:
            concepts.setdefault(key, {}).setdefault(code, display)
    out: list[dict[str, Any]] = []
    for key in sorted(concepts):
        out.append({"system": canonical_uri(key), "concept": [
            {"code": code, **({"display": d} if d else {})}
            for code, d in sorted(concepts[key].items())]})
    for key in sorted(filters):
        for value in sorted(set(filters[key])):
            out.append({"system": canonical_uri(key),
                        "filter": [{"property": "concept", "op": "is-a", "value": value}]})
    return out


def _candidates(vs: ValueSetDef) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """Every code the set may contain: (system key, code) -> (display, version)."""
    out: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for inc in vs.include:
        key = system_key(inc.system) or inc.system
        if key == ICD10CM:
            for item in [*inc.ranges, *(c.code for c in inc.codes)]:
                for code in icd10cm.expand(item):
                    out.setdefault((key, _dotted(code)), (icd10cm.description(code), None))
        else:
            for c in inc.codes:
                out.setdefault((key, c.code), (c.display, None))
    for ec in vs.expansion:
        key = system_key(ec.system) or ec.system
        if key == ICD10CM:
            for code in icd10cm.expand(ec.code):
                dotted = _dotted(code)
                if dotted == ec.code:
                    out[(key, dotted)] = (ec.display, ec.version)
                else:
                    out.setdefault((key, dotted), (icd10cm.description(code), None))
        else:
            prev = out.get((key, ec.code))
            out[(key, ec.code)] = ((prev[0] if prev and prev[0] else ec.display), ec.version)
    return out


def _description(kb: KnowledgeBase, vs: ValueSetDef) -> str:
    parts = [(vs.description or vs.title).strip()]
    for i, src in enumerate(vs.sources, 1):
        line = (f"Source {i}: VSAC {src.title} ({src.oid}, version {src.version}), "
                f"code systems taken: {', '.join(src.systems)}")
        if src.keep is not None:
            line += "; only the codes selected by the knowledge base's keep rule"
        if src.drop:
            line += "; narrowed: " + "; ".join((d.reason or "").strip() for d in src.drop)
        parts.append(line + ".")
    if vs.project_authored:
        parts.append("Project-authored: " + vs.project_authored.strip())
    if vs.text_patterns:
        parts.append("The engine also matches, in the text of records that carry no code in a "
                     "known system, the words: " + ", ".join(vs.text_patterns) + ".")
    if vs.ingredients:
        parts.append("The engine also matches medications whose displays or text name one of "
                     "these ingredients: " + ", ".join(vs.ingredients) + ".")
    return "\n\n".join(parts)


def valueset_resource(kb: KnowledgeBase, vs: ValueSetDef, timestamp: str) -> dict[str, Any]:
    """One value set as a FHIR R4 ValueSet (compose with is-a filters for ICD-10-CM, and the
    full expansion)."""
    cvs = compile_valueset(vs)
    contains = []
    for (key, code), (display, version) in sorted(_candidates(vs).items()):
        if not cvs.contains(key, code):
            continue
        entry: dict[str, Any] = {"system": canonical_uri(key)}
        if version:
            entry["version"] = version
        entry["code"] = code
        if display:
            entry["display"] = display
        contains.append(entry)
    res: dict[str, Any] = {
        "resourceType": "ValueSet",
        "id": vs.id,
        "url": vs.url,
        "identifier": [
            {"use": "secondary", "system": "urn:ietf:rfc:3986", "value": f"urn:oid:{s.oid}",
             "type": {"text": f"published source value set (VSAC), version {s.version}, "
                              "narrowed"},
             "assigner": {"display": "NLM Value Set Authority Center"}}
            for s in vs.sources],
        "version": vs.version,
        "name": _name(vs.id),
        "title": vs.title,
        "status": "active",
        "experimental": False,
        "publisher": kb.manifest.developer,
        "description": _description(kb, vs),
        "compose": {"include": _compose_part(
            vs.include, [(system_key(e.system) or e.system, e.code, e.display)
                         for e in vs.expansion])},
        "expansion": {"identifier": f"urn:msc-screen:expansion:{vs.id}:{vs.version}:"
                                    f"{kb.sha256[:16]}",
                      "timestamp": timestamp, "total": len(contains), "contains": contains},
    }
    if not res["identifier"]:
        del res["identifier"]
    if vs.exclude:
        res["compose"]["exclude"] = _compose_part(vs.exclude, [])
    if not res["compose"]["include"]:
        # a set matched only by text or ingredient names has no code: FHIR still needs one
        # include, so it names no concept of the project's own (empty) system
        res["compose"]["include"] = [{"system": "https://msc-screen.org/fhir/CodeSystem/none"}]
    return res


def export_fhir(kb: KnowledgeBase, out_dir: Path, timestamp: str | None = None) -> list[Path]:
    """Write ``ValueSet-<id>.json`` for every value set into ``out_dir``; returns the paths."""
    ts = timestamp or dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for vid in sorted(kb.valuesets):
        p = out_dir / f"ValueSet-{vid}.json"
        p.write_bytes(orjson.dumps(valueset_resource(kb, kb.valuesets[vid], ts),
                                   option=orjson.OPT_INDENT_2) + b"\n")
        paths.append(p)
    return paths
