"""Load the knowledge base from package data (or a directory), validating every file.

Every error names the file, and the rule/key where known (medspaCy's trap: load errors that do
not say which file was bad).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import yaml

from ..errors import KnowledgeError, PolicyError
from ..terminology.expansion import EXPANSIONS_DIR, Expansion, ExpansionError
from ..terminology.expansion import parse as parse_expansion
from .schema import (
    Citation,
    CoverageDef,
    CoverageKind,
    Criterion,
    ExpandedCode,
    Manifest,
    PolicyDef,
    ReviewedCode,
    ReviewedCodes,
    RuleDef,
    ValueSetDef,
)

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


def load_yaml(data: bytes | str) -> Any:
    """Safe YAML through libyaml when present (≈10× the pure-Python parser: start-up time of
    every door, and of every batch worker). Raises ``yaml.YAMLError``."""
    return yaml.load(data, Loader=_Loader)  # noqa: S506 - safe loader


REVIEWED_CODES = "terminology/reviewed-codes.yaml"
COVERAGE = "coverage.yaml"


def package_root() -> Path:
    return Path(str(resources.files("msc_screen") / "knowledge"))


@dataclass
class KnowledgeBase:
    root: Path
    manifest: Manifest
    rules: dict[str, RuleDef]
    valuesets: dict[str, ValueSetDef]
    citations: dict[str, Citation]
    policies: dict[str, PolicyDef]
    vocabulary: dict[str, dict[str, Any]]  # rule id -> note vocabulary (notes extractor)
    sha256: str
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    # codes reviewed as bearing on no rule (terminology/reviewed-codes.yaml): the safety net
    # leaves them alone
    reviewed_codes: list[ReviewedCode] = field(default_factory=list)
    # the kinds of data the rules read (coverage.yaml), in order
    coverage: list[CoverageKind] = field(default_factory=list)
    # value-set id -> its generated expansion (valuesets/expansions/<id>.tsv), header included
    expansions: dict[str, Expansion] = field(default_factory=dict)

    def ordered_rules(self) -> list[RuleDef]:
        return sorted(self.rules.values(), key=lambda r: (r.order, r.id))


def _read_yaml(path: Path, root: Path) -> Any:
    rel = str(path.relative_to(root))
    try:
        return yaml.load(path.read_bytes(), Loader=_Loader)  # noqa: S506 - safe loader
    except yaml.YAMLError as exc:
        raise KnowledgeError(rel, f"not valid YAML: {exc}") from None


def _codes_to_str(obj: Any) -> Any:
    """YAML reads 77386006 as an int; codes are strings."""
    if isinstance(obj, dict):
        return {k: (str(v) if k in ("code",) and isinstance(v, int) else _codes_to_str(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_codes_to_str(v) for v in obj]
    return obj


def _convert(data: Any, typ: type[Any], rel: str) -> Any:
    try:
        return msgspec.convert(_codes_to_str(data), typ)
    except msgspec.ValidationError as exc:
        raise KnowledgeError(rel, f"schema violation: {exc}") from None


def load_knowledge_base(root: Path | None = None, *, expansions: bool = True) -> KnowledgeBase:
    """Load and check the knowledge base at ``root`` (default: the packaged one). With
    ``expansions=False`` the generated expansion files are neither read nor hashed (what the
    importer needs to regenerate them when one is broken)."""
    root = root or package_root()
    digest = hashlib.sha256()
    files: dict[str, str] = {}
    tsv: dict[str, bytes] = {}  # expansion files, read once
    tsv_paths = list((root / EXPANSIONS_DIR).glob("*.tsv")) if expansions else []
    for p in sorted([*root.rglob("*.yaml"), *tsv_paths]):
        data = p.read_bytes()
        rel = p.relative_to(root).as_posix()
        files[rel] = hashlib.sha256(data).hexdigest()
        digest.update(rel.encode() + b"\0" + data + b"\0")
        if p.suffix == ".tsv":
            tsv[rel] = data

    manifest_path = root / "ruleset.yaml"
    if not manifest_path.exists():
        raise KnowledgeError("ruleset.yaml", "missing manifest")
    manifest = _convert(_read_yaml(manifest_path, root), Manifest, "ruleset.yaml")

    citations: dict[str, Citation] = {}
    cpath = root / "citations.yaml"
    if cpath.exists():
        raw = _read_yaml(cpath, root) or []
        for c in _convert(raw, list[Citation], "citations.yaml"):
            if c.id in citations:
                raise KnowledgeError("citations.yaml", "duplicate citation id", key=c.id)
            citations[c.id] = c

    valuesets: dict[str, ValueSetDef] = {}
    for p in sorted((root / "valuesets").glob("*.yaml")):
        rel = p.relative_to(root).as_posix()
        raw = _read_yaml(p, root)
        if isinstance(raw, dict) and "expansion" in raw:
            raise KnowledgeError(rel, "the expansion is generated (valuesets/expansions/, "
                                 "`msc-screen rules import-vsac`), not written in YAML",
                                 key="expansion")
        vs = _convert(raw, ValueSetDef, rel)
        if vs.id in valuesets:
            raise KnowledgeError(rel, "duplicate value set id", key=vs.id)
        valuesets[vs.id] = vs
    exps = _load_expansions(tsv, valuesets)

    rules: dict[str, RuleDef] = {}
    for p in sorted((root / "rules").glob("*.yaml")):
        rel = p.relative_to(root).as_posix()
        rule = _convert(_read_yaml(p, root), RuleDef, rel)
        if rule.id != p.stem:
            raise KnowledgeError(rel, f"rule id {rule.id!r} must equal the file name", key="id")
        rules[rule.id] = rule

    policies: dict[str, PolicyDef] = {}
    for p in sorted((root / "policies").glob("*.yaml")):
        rel = p.relative_to(root).as_posix()
        pol = _convert(_read_yaml(p, root), PolicyDef, rel)
        policies[pol.name] = pol

    vocabulary: dict[str, dict[str, Any]] = {}
    vdir = root / "vocabulary"
    if vdir.exists():
        for p in sorted(vdir.glob("*.yaml")):
            vocabulary[p.stem] = _read_yaml(p, root) or {}

    reviewed: list[ReviewedCode] = []
    rpath = root / REVIEWED_CODES
    if rpath.exists():
        reviewed = _convert(_read_yaml(rpath, root) or {}, ReviewedCodes, REVIEWED_CODES).codes

    coverage: list[CoverageKind] = []
    cpath = root / COVERAGE
    if cpath.exists():
        coverage = _convert(_read_yaml(cpath, root), CoverageDef, COVERAGE).kinds

    kb = KnowledgeBase(root, manifest, rules, valuesets, citations, policies, vocabulary,
                       digest.hexdigest(), files, reviewed, coverage, exps)
    _check_coverage(kb)
    _check_references(kb)
    if manifest.default_policy not in policies:
        raise KnowledgeError("ruleset.yaml", f"default policy {manifest.default_policy!r} "
                             "has no file in policies/", key="default_policy")
    for pol in policies.values():
        check_policy(kb, pol, f"policies/{pol.name}.yaml")
    return kb


def _load_expansions(tsv: dict[str, bytes], valuesets: dict[str, ValueSetDef]
                     ) -> dict[str, Expansion]:
    """Parse every generated expansion and attach its codes to its value set (in place)."""
    out: dict[str, Expansion] = {}
    for rel, data in tsv.items():
        vid = rel.rsplit("/", 1)[-1].removesuffix(".tsv")
        try:
            exp = parse_expansion(data, rel, ExpandedCode)
        except ExpansionError as exc:
            raise KnowledgeError(rel, str(exc).removeprefix(f"{rel}: ")) from None
        if vid not in valuesets:
            raise KnowledgeError(rel, f"expansion of unknown value set {vid!r} (remove it, or "
                                 "rerun `msc-screen rules import-vsac`)")
        if exp.valueset != vid:
            raise KnowledgeError(rel, f"header names value set {exp.valueset!r}")
        out[vid] = exp
        valuesets[vid] = msgspec.structs.replace(valuesets[vid], expansion=list(exp.rows))
    return out


def _criteria(rule: RuleDef) -> list[tuple[str, int, Criterion]]:
    out = []
    for part in ("present_if", "unknown_if", "absent_if"):
        for i, c in enumerate(getattr(rule, part)):
            out.append((part, i, c))
    return out


def _as_list(v: list[str] | str | None) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else list(v)


def _check_references(kb: KnowledgeBase) -> None:
    for rule in kb.rules.values():
        rel = f"rules/{rule.id}.yaml"
        for cid in rule.citations:
            if cid not in kb.citations:
                raise KnowledgeError(rel, f"unknown citation {cid!r}", key="citations")
        if not rule.citations:
            raise KnowledgeError(rel, "every rule cites at least one source", key="citations")
        for part, i, c in _criteria(rule):
            key = f"{part}[{i}]"
            for ref in _as_list(c.valueset) + c.ended_by + [
                v for v in (c.positive_valueset, c.negative_valueset) if v
            ]:
                _check_vs_ref(kb, rule, ref, rel, key)
            excl = c.exclude_valuesets
            if isinstance(excl, str) and excl.startswith("$"):
                _check_param_ref(rule, excl, rel, key)
            else:
                for ref in _as_list(excl):
                    _check_vs_ref(kb, rule, ref, rel, key)
            for fname in ("onset_within_days", "resolved_within_days", "within_days",
                          "min_age", "max_age", "accept_historical"):
                v = getattr(c, fname)
                if isinstance(v, str):
                    _check_param_ref(rule, v, rel, f"{key}.{fname}")
            if c.kind == "rule":
                if c.rule not in kb.rules or c.rule == rule.id:
                    raise KnowledgeError(rel, f"unknown or self rule reference {c.rule!r}", key=key)
            elif c.kind in ("condition", "observation", "medication", "procedure", "allergy"):
                if not c.valueset:
                    raise KnowledgeError(rel, f"{c.kind} criterion needs a valueset", key=key)
            elif c.kind == "questionnaire" and not c.link_id:
                raise KnowledgeError(rel, "questionnaire criterion needs link_id", key=key)
        for fname in ("min_age", "max_age"):
            v = getattr(rule.applicability, fname)
            if isinstance(v, str):
                _check_param_ref(rule, v, rel, f"applicability.{fname}")


def _check_coverage(kb: KnowledgeBase) -> None:
    """Coverage kinds name known value sets; rules' ``needs`` and coverage criteria name known
    kinds or ``answer:<linkId>`` of a question some rule asks."""
    kinds = {k.id for k in kb.coverage}
    if len(kinds) != len(kb.coverage):
        raise KnowledgeError(COVERAGE, "duplicate kind id", key="kinds")
    for k in kb.coverage:
        for ref in k.valuesets:
            if ref not in kb.valuesets:
                raise KnowledgeError(COVERAGE, f"unknown value set {ref!r}",
                                     key=f"kinds.{k.id}.valuesets")
    questions = {q.link_id for r in kb.rules.values() for q in r.questions}
    for rule in kb.rules.values():
        rel = f"rules/{rule.id}.yaml"
        for i, alt in enumerate(rule.needs):
            if not alt:
                raise KnowledgeError(rel, "an empty alternative would always be met",
                                     key=f"needs[{i}]")
            for need in alt:
                if need.startswith("answer:"):
                    if need[len("answer:"):] not in questions:
                        raise KnowledgeError(rel, f"{need!r}: no rule asks that question",
                                             key=f"needs[{i}]")
                elif need not in kinds:
                    raise KnowledgeError(rel, f"unknown kind of data {need!r} (coverage.yaml)",
                                         key=f"needs[{i}]")
        for need in rule.not_needed:
            if need not in kinds and not need.startswith("answer:"):
                raise KnowledgeError(rel, f"unknown kind of data {need!r} (coverage.yaml)",
                                     key="not_needed")
        for part, i, c in _criteria(rule):
            if c.kind != "coverage":
                continue
            if not c.data:
                raise KnowledgeError(rel, "a coverage criterion lists its kinds of data",
                                     key=f"{part}[{i}].data")
            for d in c.data:
                if d not in kinds:
                    raise KnowledgeError(rel, f"unknown kind of data {d!r} (coverage.yaml)",
                                         key=f"{part}[{i}].data")


def _check_vs_ref(kb: KnowledgeBase, rule: RuleDef, ref: str, rel: str, key: str) -> None:
    if ref.startswith("$"):
        _check_param_ref(rule, ref, rel, key)
    elif ref not in kb.valuesets:
        raise KnowledgeError(rel, f"unknown value set {ref!r}", key=key)


def _check_param_ref(rule: RuleDef, ref: str, rel: str, key: str) -> None:
    if not ref.startswith("$") or ref[1:] not in rule.parameters:
        raise KnowledgeError(rel, f"{ref!r} is not a parameter of the rule", key=key)


def check_policy(kb: KnowledgeBase, pol: PolicyDef, rel: str) -> None:
    for rid, ov in pol.rules.items():
        if rid not in kb.rules:
            raise PolicyError(rel, f"overrides unknown rule {rid!r}", key=f"rules.{rid}")
        for pname, value in ov.parameters.items():
            param = kb.rules[rid].parameters.get(pname)
            if param is None:
                raise PolicyError(rel, f"rule {rid!r} has no parameter {pname!r}",
                                  key=f"rules.{rid}.parameters.{pname}")
            default = param.default
            if default is not None and value is not None and type(default) is not type(value):
                raise PolicyError(rel, f"{pname!r} must be {type(default).__name__}, "
                                  f"got {type(value).__name__}",
                                  key=f"rules.{rid}.parameters.{pname}")
            if isinstance(value, list):
                for ref in value:
                    if isinstance(ref, str) and ref not in kb.valuesets:
                        raise PolicyError(rel, f"unknown value set {ref!r}",
                                          key=f"rules.{rid}.parameters.{pname}")


def load_policy(kb: KnowledgeBase, name_or_path: str | None) -> tuple[PolicyDef, str]:
    """A policy by name (from the knowledge base) or by YAML file path; returns it with its
    sha256."""
    name = name_or_path or kb.manifest.default_policy
    if name in kb.policies:
        path = kb.root / "policies" / f"{name}.yaml"
        return kb.policies[name], hashlib.sha256(path.read_bytes()).hexdigest()
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        data = p.read_bytes()
        try:
            raw = yaml.load(data, Loader=_Loader)  # noqa: S506 - safe loader
        except yaml.YAMLError as exc:
            raise PolicyError(str(p), f"not valid YAML: {exc}") from None
        pol = _convert(raw, PolicyDef, str(p))
        check_policy(kb, pol, str(p))
        return pol, hashlib.sha256(data).hexdigest()
    known = ", ".join(sorted(kb.policies))
    raise PolicyError(name, f"no such policy (known: {known}) and not a .yaml file")
