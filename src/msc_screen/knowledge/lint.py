"""The knowledge-base linter: small independent checks, each returning findings with a severity.

Modelled on OHDSI Circe's validation: a check never raises for a problem it finds; it reports
it (``error`` blocks a release, ``warning`` deserves a look, ``info`` is for the record). The
loader already refuses malformed files; these checks catch what a schema cannot: codes that do
not exist in the official tables, mistyped check digits, dangling references, unused data.

Add a check by appending a function ``(kb) -> Iterable[LintFinding]`` to ``CHECKS``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import KnowledgeError
from ..terminology import icd10cm
from ..terminology.checkdigits import loinc_answer_format_valid, loinc_valid, snomed_id_valid
from ..terminology.expansion import EXPANSIONS_DIR
from ..terminology.systems import CANONICAL_URI, ICD10, ICD10CM, LOINC, SNOMED, system_key
from .loader import KnowledgeBase, load_knowledge_base
from .schema import VALUESET_CANONICAL_BASE, Criterion, Include, Question, RuleDef, ValueSetDef

LintSeverity = Literal["info", "warning", "error"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class LintFinding:
    severity: LintSeverity
    check: str
    where: str  # file (and key) the finding is about
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "check": self.check, "where": self.where,
                "message": self.message}


Check = Callable[[KnowledgeBase], Iterable[LintFinding]]

# Words the product never uses about a person (product.md): the tool does not clear anyone.
_FORBIDDEN_WORDS = re.compile(r"\b(eligible|eligibility|cleared|clearance)\b", re.IGNORECASE)


def _vs_file(vid: str) -> str:
    return f"valuesets/{vid}.yaml"


def _rule_file(rid: str) -> str:
    return f"rules/{rid}.yaml"


def _as_list(v: list[str] | str | None) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else list(v)


def _criteria(rule: RuleDef) -> Iterator[tuple[str, Criterion]]:
    for part in ("present_if", "unknown_if", "absent_if"):
        for i, c in enumerate(getattr(rule, part)):
            yield f"{part}[{i}]", c


# ----------------------------------------------------------------------------- code validity


def _code_problem(key: str | None, code: str) -> str | None:
    """Why ``code`` is not a valid code of system ``key`` (None when it is, or unchecked)."""
    if key == ICD10CM:
        return None if icd10cm.exists(code) else "is not in the ICD-10-CM table"
    if key == SNOMED:
        return None if snomed_id_valid(code) else "fails the SNOMED CT Verhoeff check digit"
    if key == LOINC:
        if code.upper().startswith(("LA", "LP")):
            return None if loinc_answer_format_valid(code) else "is not a LOINC LA/LP code"
        return None if loinc_valid(code) else "fails the LOINC mod-10 check digit"
    return None


def _include_findings(where: str, label: str, inc: Include) -> Iterator[LintFinding]:
    key = system_key(inc.system)
    if key is None:
        yield LintFinding("warning", "code-system", where,
                          f"{label}: unknown code system {inc.system!r} (known: "
                          f"{', '.join(sorted(CANONICAL_URI))})")
    if not inc.codes and not inc.ranges:
        yield LintFinding("error", "empty-include", where, f"{label}: no codes and no ranges")
    seen: set[str] = set()
    for ce in inc.codes:
        if ce.code in seen:
            yield LintFinding("warning", "duplicate-code", where,
                              f"{label}: code {ce.code} listed twice")
        seen.add(ce.code)
        problem = _code_problem(key, ce.code)
        if problem:
            check = {ICD10CM: "icd10cm", SNOMED: "snomed", LOINC: "loinc"}.get(key or "", "code")
            yield LintFinding("error", check, where, f"{label}: {ce.code} {problem}")
    for r in inc.ranges:
        if key not in (ICD10CM, ICD10):
            yield LintFinding("error", "icd10cm-range", where,
                              f"{label}: ranges are only defined for ICD-10-CM ({r!r})")
            continue
        lo, sep, hi = r.partition("-")
        if sep and (len(lo.replace(".", "")) > 3 or len(hi.replace(".", "")) > 3):
            yield LintFinding("error", "icd10cm-range", where,
                              f"{label}: range {r!r} must run between 3-character categories "
                              "(the matcher compares categories); list sub-categories as codes")
            continue
        if key == ICD10:
            continue
        try:
            icd10cm.expand(r)
        except ValueError as exc:
            yield LintFinding("error", "icd10cm-range", where, f"{label}: {exc}")


def check_value_set_codes(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Every code, hand-listed or in a shipped expansion, exists (ICD-10-CM table) or passes its
    check digit (SNOMED CT, LOINC); every ICD-10-CM range expands."""
    for vs in kb.valuesets.values():
        where = _vs_file(vs.id)
        for i, inc in enumerate(vs.include):
            yield from _include_findings(where, f"include[{i}]", inc)
        for i, exc in enumerate(vs.exclude):
            yield from _include_findings(where, f"exclude[{i}]", exc)
        if vs.id != Path(where).stem:
            yield LintFinding("warning", "file-name", where, "value set id differs from file name")
        exp_where = _exp_file(vs.id)
        for ec in vs.expansion:
            key = system_key(ec.system)
            if key is None:
                yield LintFinding("error", "code-system", exp_where,
                                  f"{ec.code}: unknown code system {ec.system!r}")
                continue
            problem = _code_problem(key, ec.code)
            if problem:
                check = {ICD10CM: "icd10cm", SNOMED: "snomed", LOINC: "loinc"}.get(key, "code")
                yield LintFinding("error", check, exp_where, f"{ec.code} {problem}")


def _exp_file(vid: str) -> str:
    return f"{EXPANSIONS_DIR}/{vid}.tsv"


def check_provenance(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Every value set says where its codes come from: its version and canonical url (the
    project's base plus its id), its published sources, and why any hand-listed codes, text
    patterns or ingredient names (project-authored) are there."""
    for vs in kb.valuesets.values():
        where = _vs_file(vs.id)
        if not (vs.version or "").strip():
            yield LintFinding("error", "provenance", where, "no version")
        want = VALUESET_CANONICAL_BASE + vs.id
        if vs.url != want:
            yield LintFinding("error", "provenance", where,
                              f"url must be the canonical {want!r} (got {vs.url!r})")
        hand = bool(vs.include or vs.text_patterns or vs.ingredients)
        why = (vs.project_authored or "").strip()
        if not vs.sources and not why:
            yield LintFinding("error", "provenance", where,
                              "no provenance: list the published `sources` the codes come from, "
                              "or say in `project_authored` why the set is the project's own")
        elif hand and not why:
            yield LintFinding("error", "provenance", where,
                              "hand-listed codes, text patterns or ingredient names need "
                              "`project_authored` saying what they are and why")
        if not (vs.include or vs.expansion or vs.text_patterns or vs.ingredients):
            yield LintFinding("error", "empty-valueset", where, "the set matches nothing")
        for i, src in enumerate(vs.sources):
            swhere = f"{where} [sources[{i}]]"
            for system in src.systems:
                if system_key(system) is None:
                    yield LintFinding("error", "code-system", swhere,
                                      f"unknown code system {system!r}")
            for j, d in enumerate(src.drop):
                if not (d.reason or "").strip():
                    yield LintFinding("error", "provenance", f"{swhere}.drop[{j}]",
                                      "every drop says why")
                if not (d.codes or d.icd10cm or d.display):
                    yield LintFinding("error", "provenance", f"{swhere}.drop[{j}]",
                                      "a drop names codes, ICD-10-CM items or display patterns")
            if src.keep is not None and not (src.keep.codes or src.keep.icd10cm
                                             or src.keep.display):
                yield LintFinding("error", "provenance", swhere, "an empty keep selects nothing")


def _expected_header(vs: ValueSetDef) -> list[tuple[str, str, str]]:
    return [(s.oid, s.version, s.title) for s in vs.sources]


def check_expansions(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """The shipped expansions agree with the value sets' declared sources: one file per set with
    sources (none for the others), the header's sources (OID, version, title) equal the YAML's,
    rows sorted and unique, each row's code system taken from the sources that hold it, and the
    declared code-system versions equal those of the rows. (A hand edit of a file is refused at
    load: its content no longer matches its header's sha256.)"""
    for vs in kb.valuesets.values():
        exp = kb.expansions.get(vs.id)
        where = _exp_file(vs.id)
        if vs.sources and exp is None:
            yield LintFinding("error", "expansion", _vs_file(vs.id),
                              f"has published sources but no {where}: run `msc-screen rules "
                              "import-vsac --vsac FILE`")
            continue
        if exp is None:
            continue
        if not vs.sources:
            yield LintFinding("error", "expansion", where,
                              "the value set lists no published sources: remove the file (or "
                              "rerun the importer, which removes it)")
            continue
        got = [(s.oid, s.version, s.title) for s in exp.sources]
        if got != _expected_header(vs):
            yield LintFinding("error", "expansion", where,
                              f"built from {got}, but the value set declares "
                              f"{_expected_header(vs)}: regenerate with `msc-screen rules "
                              "import-vsac`")
        keys = [(r.system, r.code) for r in exp.rows]
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            yield LintFinding("error", "expansion", where, "rows are not sorted and unique")
        n = len(vs.sources)
        for r in exp.rows:
            idx = [int(x) for x in r.sources.split(",") if x.isdigit()]
            if not idx or len(idx) != len(r.sources.split(",")) or any(
                    not 1 <= i <= n for i in idx):
                yield LintFinding("error", "expansion", where,
                                  f"{r.system} {r.code}: names source(s) {r.sources!r}, not "
                                  f"one of 1..{n}")
                continue
            for i in idx:
                if r.system not in vs.sources[i - 1].systems:
                    yield LintFinding("error", "expansion", where,
                                      f"{r.system} {r.code}: source {i} takes only "
                                      f"{vs.sources[i - 1].systems}")
        versions = exp.versions()
        if vs.code_system_versions != versions:
            yield LintFinding("error", "expansion", _vs_file(vs.id),
                              f"code_system_versions must be {versions} (the versions of the "
                              f"codes in {where}), not {vs.code_system_versions}")


def check_published(kb: KnowledgeBase, published_path: Path) -> list[LintFinding]:
    """Regenerating the expansions from the published file gives exactly the shipped files."""
    from ..terminology.vsac import VsacError, read_published, regenerate

    try:
        files = regenerate(kb.valuesets.values(), read_published(published_path))
    except VsacError as exc:
        return [LintFinding("error", "published", str(published_path), line)
                for line in str(exc).splitlines()]
    out: list[LintFinding] = []
    exp_dir = kb.root / EXPANSIONS_DIR
    for vid, data in sorted(files.items()):
        p = exp_dir / f"{vid}.tsv"
        if not p.exists() or p.read_bytes() != data:
            out.append(LintFinding("error", "published", _exp_file(vid),
                                   f"differs from what {published_path.name} gives: rerun "
                                   "`msc-screen rules import-vsac` and review the diff"))
    for p in sorted(exp_dir.glob("*.tsv")):
        if p.stem not in files:
            out.append(LintFinding("error", "published", f"{EXPANSIONS_DIR}/{p.name}",
                                   "no value set generates it"))
    return out


def check_value_set_ids(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Value set file names equal their ids (so references can be found by name)."""
    for p in sorted((kb.root / "valuesets").glob("*.yaml")):
        if p.stem not in kb.valuesets:
            yield LintFinding("error", "file-name", f"valuesets/{p.name}",
                              "file name does not match the id of the value set it holds")


def check_action_codes(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Codes in recommended actions (tumour-marker panel, pregnancy test) are valid."""
    for rule in kb.rules.values():
        for a in rule.actions:
            where = f"{_rule_file(rule.id)} [actions.{a.id}]"
            for c in a.codes:
                system, code = c.get("system"), c.get("code")
                if not system or not code:
                    yield LintFinding("error", "action-code", where,
                                      "every action code needs a system and a code")
                    continue
                key = system_key(system)
                if key is None:
                    yield LintFinding("warning", "code-system", where,
                                      f"unknown code system {system!r}")
                problem = _code_problem(key, str(code))
                if problem:
                    yield LintFinding("error", "action-code", where, f"{code} {problem}")


def check_default_limits(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Documented default upper limits name valid LOINC codes of the criterion's value sets."""
    for rule in kb.rules.values():
        for key, c in _criteria(rule):
            if not c.default_upper_limits:
                continue
            where = f"{_rule_file(rule.id)} [{key}.default_upper_limits]"
            codes = {ce.code for ref in _as_list(c.valueset) if ref in kb.valuesets
                     for inc in kb.valuesets[ref].include for ce in inc.codes}
            codes |= {ec.code for ref in _as_list(c.valueset) if ref in kb.valuesets
                      for ec in kb.valuesets[ref].expansion}
            for code, limit in c.default_upper_limits.items():
                if not loinc_valid(code):
                    yield LintFinding("error", "loinc", where,
                                      f"{code} fails the LOINC mod-10 check digit")
                elif code not in codes:
                    yield LintFinding("warning", "default-limit", where,
                                      f"{code} is not in the criterion's value sets")
                if limit <= 0:
                    yield LintFinding("error", "default-limit", where,
                                      f"{code}: upper limit must be positive")
            for ref in _as_list(c.valueset):
                vs = kb.valuesets.get(ref)
                loinc_codes = sorted({ce.code for inc in (vs.include if vs else ())
                                      if system_key(inc.system) == LOINC for ce in inc.codes}
                                     | {ec.code for ec in (vs.expansion if vs else ())
                                        if ec.system == LOINC})
                for code in loinc_codes:
                    if code not in c.default_upper_limits:
                        yield LintFinding("info", "default-limit", where,
                                          f"{code} has no documented default limit; results "
                                          "without a referenceRange are judged by their "
                                          "interpretation or coded value only")


# ---------------------------------------------------------------------- references and usage


def _referenced_valuesets(kb: KnowledgeBase) -> set[str]:
    used: set[str] = set()
    for rule in kb.rules.values():
        for _, c in _criteria(rule):
            refs = _as_list(c.valueset) + c.ended_by + [
                v for v in (c.positive_valueset, c.negative_valueset) if v]
            excl = c.exclude_valuesets
            if not (isinstance(excl, str) and excl.startswith("$")):
                refs += _as_list(excl)
            used.update(r for r in refs if not r.startswith("$"))
        for p in rule.parameters.values():
            used.update(_strings(p.default))
    for pol in kb.policies.values():
        for ov in pol.rules.values():
            for v in ov.parameters.values():
                used.update(_strings(v))
    return used


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [x for x in v if isinstance(x, str)]
    return []


def check_valuesets_used(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Every value set is used by a rule or a policy (dead data hides mistakes)."""
    used = _referenced_valuesets(kb)
    for vid in sorted(kb.valuesets):
        if vid not in used:
            yield LintFinding("warning", "unused-valueset", _vs_file(vid),
                              "value set is not used by any rule or policy")


def check_citations_used(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Every citation is cited by a rule; every rule cites a source."""
    cited = {c for r in kb.rules.values() for c in r.citations}
    for cid in sorted(kb.citations):
        if cid not in cited:
            yield LintFinding("warning", "unused-citation", f"citations.yaml [{cid}]",
                              "citation is not cited by any rule")
    for rule in kb.rules.values():
        if not rule.citations:
            yield LintFinding("error", "citation", _rule_file(rule.id),
                              "rule cites no source")
        if rule.origin == "seed" and "seed-article" not in rule.citations:
            yield LintFinding("warning", "citation", _rule_file(rule.id),
                              "a seed rule should cite the seed article")


def _param_refs(rule: RuleDef) -> set[str]:
    refs: set[str] = set()
    for _, c in _criteria(rule):
        for v in (c.onset_within_days, c.resolved_within_days, c.within_days, c.min_age,
                  c.max_age, c.accept_historical, c.exclude_valuesets, c.valueset):
            if isinstance(v, str) and v.startswith("$"):
                refs.add(v[1:])
    for v in (rule.applicability.min_age, rule.applicability.max_age):
        if isinstance(v, str) and v.startswith("$"):
            refs.add(v[1:])
    return refs


def check_parameters(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Parameters are documented, used, and windows say their unit."""
    for rule in kb.rules.values():
        refs = _param_refs(rule)
        for name, p in rule.parameters.items():
            where = f"{_rule_file(rule.id)} [parameters.{name}]"
            if len(p.description.strip()) < 10:
                yield LintFinding("error", "parameter-doc", where,
                                  "parameter needs a description of what it controls")
            if name not in refs:
                yield LintFinding("warning", "unused-parameter", where,
                                  "parameter is not referenced by any criterion")
            if (name.endswith("_days") or name.endswith("_age")) and not p.unit:
                yield LintFinding("warning", "parameter-doc", where, "parameter has no unit")


def check_questions(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Questions have unique link_ids, enable_when refers to existing questions, choice
    questions have options, and questionnaire criteria ask a defined question with a defined
    answer."""
    owners: dict[str, str] = {}
    by_link: dict[str, Question] = {}
    for rule in kb.ordered_rules():
        for q in rule.questions:
            where = f"{_rule_file(rule.id)} [questions.{q.link_id}]"
            if q.link_id in owners:
                yield LintFinding("error", "question", where,
                                  f"link_id also defined by rule {owners[q.link_id]!r}")
            owners.setdefault(q.link_id, rule.id)
            by_link.setdefault(q.link_id, q)
            if q.type == "choice" and not q.options:
                yield LintFinding("error", "question", where, "choice question has no options")
            if _FORBIDDEN_WORDS.search(q.text):
                yield LintFinding("error", "wording", where,
                                  "question text must not speak of eligibility or clearance")
            if (q.min_value is not None or q.max_value is not None) and q.type not in (
                    "integer", "decimal"):
                yield LintFinding("error", "question", where,
                                  "min_value/max_value apply to integer and decimal questions")
            if (q.min_value is not None and q.max_value is not None
                    and q.min_value > q.max_value):
                yield LintFinding("error", "question", where, "min_value is above max_value")
            if q.not_in_future and q.type != "date":
                yield LintFinding("error", "question", where,
                                  "not_in_future applies to date questions")
    for rule in kb.rules.values():
        for q in rule.questions:
            for ew in q.enable_when:
                where = f"{_rule_file(rule.id)} [questions.{q.link_id}.enable_when]"
                target = by_link.get(ew.question)
                if target is None:
                    yield LintFinding("error", "question", where,
                                      f"enable_when refers to unknown question {ew.question!r}")
                elif target.type == "choice" and ew.operator in ("=", "!=") and str(
                        ew.answer) not in {o.code for o in target.options}:
                    yield LintFinding("error", "question", where,
                                      f"answer {ew.answer!r} is not an option of "
                                      f"{ew.question!r}")
        for key, c in _criteria(rule):
            if c.kind != "questionnaire" or not c.link_id:
                continue
            where = f"{_rule_file(rule.id)} [{key}]"
            cq = by_link.get(c.link_id)
            if cq is None:
                yield LintFinding("error", "question", where,
                                  f"criterion asks about {c.link_id!r}, which no rule defines "
                                  "as a question")
                continue
            if cq.type == "choice":
                codes = {o.code for o in cq.options}
                for a in c.answers:
                    if not isinstance(a, bool) and str(a) not in codes:
                        yield LintFinding("error", "question", where,
                                          f"answer {a!r} is not an option of {c.link_id!r}")
            if cq.type == "date" and c.answers:
                yield LintFinding("warning", "question", where,
                                  "a date question is matched by within_days, not answers")


def check_wording(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Patient-facing and summary text never says 'eligible' or 'cleared' (product.md)."""
    for rule in kb.rules.values():
        texts = {"patient_text": rule.patient_text, "patient_title": rule.patient_title or "",
                 "summary.present": rule.summary.present,
                 "summary.absent": rule.summary.absent,
                 "summary.unknown": rule.summary.unknown or "", "rationale": rule.rationale}
        for name, text in texts.items():
            if _FORBIDDEN_WORDS.search(text):
                yield LintFinding("error", "wording", f"{_rule_file(rule.id)} [{name}]",
                                  "text must not speak of eligibility or clearance")


def check_notes_criteria(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """A note alone should give review, not a contraindication (notes are read by NLP)."""
    for rule in kb.rules.values():
        for key, c in _criteria(rule):
            if c.kind == "note" and rule.severity == "contraindicated" and (
                    c.max_severity in (None, "contraindicated")):
                yield LintFinding("warning", "note-severity", f"{_rule_file(rule.id)} [{key}]",
                                  "a note criterion of a contraindication rule should set "
                                  "max_severity: physician-review")


def kinds_read(kb: KnowledgeBase, c: Criterion) -> set[str]:
    """The kinds of data (coverage.yaml, or "answer:<linkId>") a criterion reads."""
    if c.kind == "questionnaire":
        return {f"answer:{c.link_id}"}
    cands = [k for k in kb.coverage if c.kind in k.read_by]
    if c.kind == "observation":
        mine = set(_as_list(c.valueset))
        by_set = {k.id for k in cands if mine & set(k.valuesets)}
        return by_set or {k.id for k in cands if not k.valuesets}
    return {k.id for k in cands}


def check_needs(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Every kind of data a rule's concern-raising criteria read is one "absent" needs, or is
    listed in not_needed with the reason: otherwise a record without it would read as
    reassurance (issue: missing data is never absence)."""
    for rule in kb.rules.values():
        needed = {k for alt in rule.needs for k in alt} | set(rule.not_needed)
        read: set[str] = set()
        for part in ("present_if", "unknown_if"):
            for c in getattr(rule, part):
                read |= kinds_read(kb, c)
        for k in sorted(read - needed):
            yield LintFinding("error", "needs", f"{_rule_file(rule.id)} [needs]",
                              f"its criteria read {k!r}, which no alternative of `needs` names "
                              "and `not_needed` does not explain")
        for k, why in sorted(rule.not_needed.items()):
            if k not in read:
                yield LintFinding("warning", "needs", f"{_rule_file(rule.id)} [not_needed]",
                                  f"{k!r} is not read by the rule's criteria")
            elif not why.strip():
                yield LintFinding("error", "needs", f"{_rule_file(rule.id)} [not_needed]",
                                  f"{k!r} needs a reason")


def check_policies(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Policies are described, and the default policy keeps the article's strictness."""
    for pol in kb.policies.values():
        where = f"policies/{pol.name}.yaml"
        if len(pol.description.strip()) < 20:
            yield LintFinding("warning", "policy-doc", where,
                              "describe what the policy changes and why")
        for rid, ov in pol.rules.items():
            if not ov.enabled:
                yield LintFinding("info", "policy", where, f"disables rule {rid!r}")
    default = kb.policies.get(kb.manifest.default_policy)
    if default is not None and default.rules:
        yield LintFinding("info", "policy", f"policies/{default.name}.yaml",
                          "the default policy overrides rule defaults")


def check_note_vocabulary(kb: KnowledgeBase) -> Iterator[LintFinding]:
    """Findings of the notes vocabulary linter, when the notes component provides one."""
    try:
        mod = importlib.import_module("msc_screen.notes")
    except ImportError:
        return
    fn = getattr(mod, "lint_vocabulary", None)
    if fn is None:
        return
    for item in fn(kb) or ():
        yield _coerce(item)


def _coerce(item: Any) -> LintFinding:
    if isinstance(item, LintFinding):
        return item
    get = item.get if isinstance(item, dict) else (lambda k, d=None: getattr(item, k, d))
    sev = str(get("severity", "warning"))
    if sev not in SEVERITY_ORDER:
        sev = "error" if sev in ("critical", "fatal") else "warning"
    return LintFinding(sev, str(get("check", "note-vocabulary")),  # type: ignore[arg-type]
                       str(get("where", "vocabulary")), str(get("message", item)))


CHECKS: list[Check] = [
    check_value_set_codes,
    check_provenance,
    check_expansions,
    check_value_set_ids,
    check_action_codes,
    check_default_limits,
    check_valuesets_used,
    check_citations_used,
    check_parameters,
    check_questions,
    check_wording,
    check_notes_criteria,
    check_needs,
    check_policies,
    check_note_vocabulary,
]


def lint_kb(kb: KnowledgeBase, checks: Iterable[Check] | None = None) -> list[LintFinding]:
    """Run every check on a loaded knowledge base; a check that crashes is itself a finding."""
    out: list[LintFinding] = []
    for check in checks if checks is not None else CHECKS:
        try:
            out.extend(check(kb))
        except Exception as exc:  # a broken check must not hide the others' findings
            out.append(LintFinding("error", check.__name__, "linter",
                                   f"check crashed: {type(exc).__name__}: {exc}"))
    return sorted(out, key=lambda f: (SEVERITY_ORDER[f.severity], f.where, f.check, f.message))


def lint(root: Path | None = None, published: Path | None = None) -> list[LintFinding]:
    """Load the knowledge base at ``root`` (default: the packaged one) and lint it; with
    ``published`` (the VSAC file the expansions come from), also check that regenerating them
    gives the shipped files. A file the loader refuses is reported as a ``schema`` error instead
    of raised."""
    try:
        kb = load_knowledge_base(root)
    except KnowledgeError as exc:
        where = getattr(exc, "path", "knowledge base")
        key = getattr(exc, "key", None)
        return [LintFinding("error", "schema", f"{where} [{key}]" if key else where,
                            getattr(exc, "reason", str(exc)))]
    found = lint_kb(kb)
    if published is not None:
        found = sorted([*found, *check_published(kb, published)],
                       key=lambda f: (SEVERITY_ORDER[f.severity], f.where, f.check, f.message))
    return found


def has_errors(findings: Iterable[LintFinding]) -> bool:
    return any(f.severity == "error" for f in findings)
