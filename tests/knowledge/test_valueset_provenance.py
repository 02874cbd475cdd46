"""Value sets built from published VSAC sources: the importer's narrowing, the generated
expansion files, their provenance checks in the linter, the ruleset hash, and the FHIR export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from msc_screen.cli import app
from msc_screen.knowledge import load_knowledge_base
from msc_screen.knowledge.compiled import compile_valueset
from msc_screen.knowledge.export import export_fhir, valueset_resource
from msc_screen.knowledge.lint import LintFinding, lint
from msc_screen.knowledge.loader import package_root
from msc_screen.knowledge.schema import VALUESET_CANONICAL_BASE, ValueSetDef
from msc_screen.terminology import expansion as exp_mod
from msc_screen.terminology.expansion import ExpansionError, parse, render
from msc_screen.terminology.vsac import (
    PublishedCode,
    PublishedValueSet,
    VsacError,
    build,
    read_published,
    regenerate,
)

VSAC_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vsac" / \
    "ecqm-2024-valuesets.ndjson.gz"
needs_vsac = pytest.mark.skipif(not VSAC_FILE.exists(),
                                reason=f"shared VSAC value sets not at {VSAC_FILE}")
runner = CliRunner()


# ------------------------------------------------------------------ importer (no shared data)

def _pub(oid: str = "1.2.3", version: str = "20240101", title: str = "Test set",
         codes: tuple[tuple[str, str, str], ...] = ()) -> PublishedValueSet:
    return PublishedValueSet(oid, version, title, f"http://cts.nlm.nih.gov/fhir/ValueSet/{oid}",
                             tuple(PublishedCode(s, "2024", c, d) for s, c, d in codes))


_CODES = (
    ("icd10cm", "I20.0", "Unstable angina"),
    ("icd10cm", "I20.9", "Angina pectoris, unspecified"),
    ("snomed", "4557003", "Preinfarction syndrome (disorder)"),
    ("snomed", "233819005", "Stable angina (disorder)"),
    ("icd10pcs", "0210093", "Bypass coronary artery"),
)


def _vs(**sources: object) -> ValueSetDef:
    src = {"oid": "1.2.3", "version": "20240101", "title": "Test set",
           "systems": ["snomed", "icd10cm"], **sources}
    return msgspec.convert({"id": "t", "title": "T", "sources": [src]}, ValueSetDef)


def test_build_takes_the_declared_systems_and_applies_keep_and_drops() -> None:
    pub = {"1.2.3": _pub(codes=_CODES)}
    e = build(_vs(drop=[{"reason": "stable angina is not unstable",
                         "display": ["^stable angina"]}]), pub)
    assert [(r.system, r.code) for r in e.rows] == [
        ("icd10cm", "I20.0"), ("icd10cm", "I20.9"), ("snomed", "4557003")]
    assert [(d.code, d.rule) for d in e.dropped] == [("233819005", "1.1")]
    assert "left out: icd10pcs 1" in e.sources[0].systems  # PCS never read as a diagnosis
    kept = build(_vs(keep={"codes": ["I20.0", "4557003"]}), pub)
    assert [r.code for r in kept.rows] == ["I20.0", "4557003"]
    assert kept.dropped == ()  # not selected by keep: counted in the header, not listed
    assert "not selected by keep: 2" in kept.sources[0].systems


@pytest.mark.parametrize(("sources", "pub", "message"), [
    ({}, {}, "not in the published file"),
    ({}, {"1.2.3": _pub(version="20250101", codes=_CODES)},
     "has version 20250101, the set declares 20240101"),
    ({"drop": [{"reason": "x", "codes": ["999999999"]}]}, {"1.2.3": _pub(codes=_CODES)},
     "lists 999999999, which no source"),
    ({"drop": [{"reason": "x", "display": ["no such display"]}]},
     {"1.2.3": _pub(codes=_CODES)}, "removes no code"),
    ({"drop": [{"display": ["^stable"]}]}, {"1.2.3": _pub(codes=_CODES)}, "gives no reason"),
    ({"keep": {"codes": ["I20.0"]}, "systems": ["snomed", "icd10cm", "loinc"]},
     {"1.2.3": _pub(codes=_CODES)}, "holds no loinc code"),
])
def test_build_refuses_sources_that_do_not_fit(sources: dict[str, object],
                                               pub: dict[str, PublishedValueSet],
                                               message: str) -> None:
    with pytest.raises(VsacError, match=message):
        build(_vs(**sources), pub)


def test_build_refuses_a_kept_icd_parent_of_a_dropped_code() -> None:
    # the engine matches an ICD-10-CM code with all its descendants: keeping I20.8 would
    # silently undo the drop of I20.81
    pub = {"1.2.3": _pub(codes=(("icd10cm", "I20.8", "Other forms of angina pectoris"),
                                ("icd10cm", "I20.81", "Angina with microvascular dysfunction")))}
    with pytest.raises(VsacError, match=r"I20\.8 is a parent of I20\.81"):
        build(_vs(systems=["icd10cm"], drop=[{"reason": "x", "codes": ["I20.81"]}]), pub)


def test_build_refuses_a_code_dropped_from_one_source_but_kept_from_another() -> None:
    pub = {"1.2.3": _pub(codes=_CODES), "4.5.6": _pub("4.5.6", codes=_CODES)}
    vs = msgspec.convert({"id": "t", "title": "T", "sources": [
        {"oid": "1.2.3", "version": "20240101", "title": "Test set", "systems": ["snomed"],
         "drop": [{"reason": "stable", "codes": ["233819005"]}]},
        {"oid": "4.5.6", "version": "20240101", "title": "Test set", "systems": ["snomed"]},
    ]}, ValueSetDef)
    with pytest.raises(VsacError, match="narrow every source the same way"):
        build(vs, pub)


def test_rendered_file_round_trips_and_refuses_a_hand_edit() -> None:
    e = build(_vs(drop=[{"reason": "stable", "codes": ["233819005"]}]),
              {"1.2.3": _pub(codes=_CODES)})
    data = render(e)
    back = parse(data, "t.tsv")
    assert back.rows == e.rows and back.dropped == e.dropped and back.sources == e.sources
    assert render(back) == data
    with pytest.raises(ExpansionError, match="edited by hand"):
        parse(data.replace(b"I20.9\t", b"I21.9\t"), "t.tsv")
    with pytest.raises(ExpansionError, match="edited by hand"):
        parse(data + b"snomed\t22298006\t2023-09\tMyocardial infarction\t1\n", "t.tsv")


def test_read_published_reads_ndjson_json_bundles_and_directories(tmp_path: Path) -> None:
    res = {"resourceType": "ValueSet", "id": "1.2.3", "version": "1", "title": "A",
           "expansion": {"contains": [{"system": "http://snomed.info/sct", "version": "2023-09",
                                       "code": "4557003", "display": "Unstable angina"}]}}
    (tmp_path / "a.ndjson").write_text(json.dumps(res) + "\n")
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {**res, "id": "7.8"}}]}
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    got = read_published(tmp_path)
    assert sorted(got) == ["1.2.3", "7.8"]
    assert got["1.2.3"].codes[0].system == "snomed"
    (tmp_path / "c.json").write_text(json.dumps({**res, "expansion": {}}))
    with pytest.raises(VsacError, match=r"no expansion\.contains"):
        read_published(tmp_path / "c.json")


# ------------------------------------------------------------ the shipped knowledge base

def test_every_set_has_provenance_and_its_canonical_url() -> None:
    kb = load_knowledge_base()
    files = list((package_root() / "valuesets").glob("*.yaml"))
    assert len(kb.valuesets) == len(files) > 30
    for vs in kb.valuesets.values():
        assert vs.url == VALUESET_CANONICAL_BASE + vs.id
        assert vs.version
        assert vs.sources or vs.project_authored, vs.id
        assert bool(vs.sources) == (vs.id in kb.expansions), vs.id


def test_expansions_are_in_the_ruleset_hash(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    shutil.copytree(package_root(), root)
    before = load_knowledge_base(root)
    p = root / exp_mod.EXPANSIONS_DIR / "unstable-angina-conditions.tsv"
    e = parse(p.read_bytes(), p.name)
    # a valid (re-rendered) file with one code fewer: loads, but the ruleset hash changes
    p.write_bytes(render(exp_mod.Expansion(e.valueset, e.generator, e.sources, e.drops,
                                           e.rows[1:], e.dropped, "")))
    after = load_knowledge_base(root)
    assert after.sha256 != before.sha256
    assert len(after.valuesets["unstable-angina-conditions"].expansion) == len(e.rows) - 1


def test_compiled_set_matches_expansion_codes() -> None:
    kb = load_knowledge_base()
    cvs = compile_valueset(kb.valuesets["malignancy-conditions"])
    assert cvs.contains("snomed", "93761005")  # only in the expansion (VSAC)
    assert not cvs.contains("snomed", "302826002")  # adrenal cortical adenoma: dropped
    assert "302826002" in {d.code for d in kb.expansions["malignancy-conditions"].dropped}


def test_yaml_may_not_write_an_expansion(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    shutil.copytree(package_root(), root)
    p = root / "valuesets" / "unstable-angina-conditions.yaml"
    p.write_text(p.read_text(encoding="utf-8") + "expansion: []\n", encoding="utf-8")
    errs = _errors(root)
    assert errs and errs[0].check == "schema" and "generated" in errs[0].message


# -------------------------------------------------------------------------- lint failures

def _errors(root: Path) -> list[LintFinding]:
    return [f for f in lint(root) if f.severity == "error"]


@pytest.fixture()
def kb_copy(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    shutil.copytree(package_root(), root)
    return root


def test_shipped_expansions_pass_every_check() -> None:
    assert _errors(package_root()) == []


def test_hand_edited_expansion_fails_lint(kb_copy: Path) -> None:
    p = kb_copy / exp_mod.EXPANSIONS_DIR / "myocardial-infarction-acute.tsv"
    text = p.read_text(encoding="utf-8")
    # an old MI slipped into the acute set by hand
    p.write_text(text.replace("\nsystem\tcode\tversion\tdisplay\tsources\n",
                              "\nsystem\tcode\tversion\tdisplay\tsources\n"
                              "icd10cm\tI25.2\t2024\tOld myocardial infarction\t1\n"),
                 encoding="utf-8")
    errs = _errors(kb_copy)
    assert len(errs) == 1 and errs[0].check == "schema"
    assert "myocardial-infarction-acute.tsv" in errs[0].where and "sha256" in errs[0].message


def _rewrite(p: Path, **changes: object) -> None:
    """Re-render an expansion with changed parts (a consistent file that no longer agrees with
    its value set)."""
    e = parse(p.read_bytes(), p.name)
    p.write_bytes(render(exp_mod.Expansion(**{**{f: getattr(e, f) for f in (
        "valueset", "generator", "sources", "drops", "rows", "dropped", "content_sha256")},
        **changes})))  # type: ignore[arg-type]


def test_expansion_from_another_source_version_fails_lint(kb_copy: Path) -> None:
    p = kb_copy / exp_mod.EXPANSIONS_DIR / "unstable-angina-conditions.tsv"
    e = parse(p.read_bytes(), p.name)
    s = e.sources[0]
    _rewrite(p, sources=(exp_mod.SourceRef(s.oid, "20250101", s.title, s.systems),))
    errs = _errors(kb_copy)
    assert any(f.check == "expansion" and "unstable-angina" in f.where
               and "20250101" in f.message for f in errs)


def test_expansion_code_with_a_bad_check_digit_fails_lint(kb_copy: Path) -> None:
    p = kb_copy / exp_mod.EXPANSIONS_DIR / "unstable-angina-conditions.tsv"
    e = parse(p.read_bytes(), p.name)
    bad = exp_mod.Row("snomed", "4557004", "2023-09", "mistyped", "1")
    _rewrite(p, rows=tuple(sorted((*e.rows, bad))))
    errs = _errors(kb_copy)
    assert any(f.check == "snomed" and "4557004" in f.message for f in errs)


def test_expansion_row_from_a_system_its_source_does_not_give_fails_lint(kb_copy: Path
                                                                         ) -> None:
    p = kb_copy / exp_mod.EXPANSIONS_DIR / "anticoagulant-status-conditions.tsv"
    e = parse(p.read_bytes(), p.name)
    extra = exp_mod.Row("snomed", "4557003", "2023-09", "Preinfarction syndrome", "1")
    _rewrite(p, rows=tuple(sorted((*e.rows, extra))))
    errs = _errors(kb_copy)
    assert any(f.check == "expansion" and "source 1 takes only" in f.message for f in errs)


def _edit_yaml(p: Path, old: str, new: str) -> None:
    text = p.read_text(encoding="utf-8")
    assert old in text, old
    p.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_missing_provenance_fails_lint(kb_copy: Path) -> None:
    p = kb_copy / "valuesets" / "pregnancy-positive-answers.yaml"
    text = p.read_text(encoding="utf-8")
    p.write_text(text[:text.index("project_authored:")], encoding="utf-8")
    errs = _errors(kb_copy)
    assert any(f.check == "provenance" and "pregnancy-positive-answers" in f.where
               and "no provenance" in f.message for f in errs)


def test_hand_codes_beside_sources_need_project_authored(kb_copy: Path) -> None:
    p = kb_copy / "valuesets" / "unstable-angina-conditions.yaml"
    text = p.read_text(encoding="utf-8")
    start = text.index("project_authored:")
    end = text.index("code_system_versions:")
    p.write_text(text[:start] + text[end:], encoding="utf-8")
    errs = _errors(kb_copy)
    assert any(f.check == "provenance" and "need `project_authored`" in f.message
               for f in errs)


@pytest.mark.parametrize(("old", "new", "message"), [
    ('version: "2026.12.0"\n', "", "no version"),
    ("url: https://msc-screen.org/fhir/ValueSet/unstable-angina-conditions",
     "url: https://example.org/unstable-angina", "canonical"),
    ('code_system_versions: {icd10cm: ["2024"], snomed: ["2023-09"]}',
     'code_system_versions: {icd10cm: ["2023"], snomed: ["2023-09"]}', "code_system_versions"),
    ("  - oid: 2.16.840.1.113762.1.4.1047.47\n    version: \"20240208\"",
     "  - oid: 2.16.840.1.113762.1.4.1047.47\n    version: \"20250208\"", "declares"),
])
def test_inconsistent_provenance_fails_lint(kb_copy: Path, old: str, new: str,
                                            message: str) -> None:
    _edit_yaml(kb_copy / "valuesets" / "unstable-angina-conditions.yaml", old, new)
    errs = _errors(kb_copy)
    assert any(message in f.message and "unstable-angina" in f.where for f in errs), errs


def test_missing_or_orphan_expansion_fails_lint(kb_copy: Path) -> None:
    exp_dir = kb_copy / exp_mod.EXPANSIONS_DIR
    (exp_dir / "unstable-angina-conditions.tsv").unlink()
    errs = _errors(kb_copy)
    assert any(f.check == "expansion" and "no valuesets/expansions/unstable-angina" in f.message
               for f in errs)
    shutil.copy(exp_dir / "tumour-marker-observations.tsv", exp_dir / "no-such-set.tsv")
    errs = _errors(kb_copy)
    assert errs and errs[0].check == "schema" and "unknown value set" in errs[0].message


# ----------------------------------------------------------------- regeneration (shared)

@needs_vsac
def test_regeneration_is_deterministic_and_gives_the_shipped_files() -> None:
    kb = load_knowledge_base(expansions=False)
    published = read_published(VSAC_FILE)
    first = regenerate(kb.valuesets.values(), published)
    second = regenerate(load_knowledge_base(expansions=False).valuesets.values(),
                        read_published(VSAC_FILE))
    assert first == second
    shipped = {p.stem: p.read_bytes()
               for p in (package_root() / exp_mod.EXPANSIONS_DIR).glob("*.tsv")}
    assert shipped == first


@needs_vsac
def test_lint_with_the_published_file_catches_a_stale_expansion(kb_copy: Path) -> None:
    assert [f for f in lint(kb_copy, VSAC_FILE) if f.severity == "error"] == []
    p = kb_copy / exp_mod.EXPANSIONS_DIR / "unstable-angina-conditions.tsv"
    e = parse(p.read_bytes(), p.name)
    _rewrite(p, rows=e.rows[:1])  # consistent, but not what the published file gives
    errs = [f for f in lint(kb_copy, VSAC_FILE) if f.severity == "error"]
    assert any(f.check == "published" and "unstable-angina" in f.where for f in errs)


@needs_vsac
def test_import_vsac_cli_writes_then_checks(kb_copy: Path) -> None:
    exp_dir = kb_copy / exp_mod.EXPANSIONS_DIR
    (exp_dir / "breastfeeding-conditions.tsv").unlink()
    r = runner.invoke(app, ["rules", "import-vsac", "--vsac", str(VSAC_FILE), "--root",
                            str(kb_copy), "--check"])
    assert r.exit_code == 1 and "breastfeeding-conditions.tsv" in r.output
    r = runner.invoke(app, ["rules", "import-vsac", "--vsac", str(VSAC_FILE), "--root",
                            str(kb_copy)])
    assert r.exit_code == 0, r.output
    assert (exp_dir / "breastfeeding-conditions.tsv").read_bytes() == (
        package_root() / exp_mod.EXPANSIONS_DIR / "breastfeeding-conditions.tsv").read_bytes()
    r = runner.invoke(app, ["rules", "import-vsac", "--vsac", str(VSAC_FILE), "--root",
                            str(kb_copy), "--check"])
    assert r.exit_code == 0, r.output


@needs_vsac
def test_import_vsac_cli_names_a_source_version_mismatch(kb_copy: Path) -> None:
    _edit_yaml(kb_copy / "valuesets" / "unstable-angina-conditions.yaml",
               'version: "20240208"', 'version: "20250208"')
    r = runner.invoke(app, ["rules", "import-vsac", "--vsac", str(VSAC_FILE), "--root",
                            str(kb_copy)])
    assert r.exit_code == 2
    assert "2.16.840.1.113762.1.4.1047.47" in r.output and "20240208" in r.output


# ------------------------------------------------------------------------------- export

@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    out = tmp_path_factory.mktemp("fhir")
    r = runner.invoke(app, ["rules", "export", "--format", "fhir", str(out),
                            "--timestamp", "2026-12-01T00:00:00+00:00"])
    assert r.exit_code == 0, r.output
    return {p.stem.removeprefix("ValueSet-"): json.loads(p.read_text(encoding="utf-8"))
            for p in out.glob("ValueSet-*.json")}


def test_export_is_valid_fhir_r4(exported: dict[str, dict[str, object]]) -> None:
    from fhir.resources.R4B.valueset import ValueSet

    assert len(exported) == len(list((package_root() / "valuesets").glob("*.yaml")))
    for vid, res in exported.items():
        vs = ValueSet.model_validate(res)
        assert vs.url == VALUESET_CANONICAL_BASE + vid
        assert vs.version == "2026.12.0"
        assert vs.expansion is not None and vs.expansion.timestamp is not None


def _contains(res: dict[str, object]) -> set[tuple[str, str]]:
    exp = res["expansion"]
    assert isinstance(exp, dict)
    return {(c["system"].rsplit("/", 1)[-1], c["code"]) for c in exp["contains"]}


def test_export_holds_every_code_the_engine_uses(exported: dict[str, dict[str, object]]
                                                 ) -> None:
    kb = load_knowledge_base()
    for vid, vs in kb.valuesets.items():
        got = _contains(exported[vid])
        cvs = compile_valueset(vs)
        for ec in vs.expansion:
            if cvs.contains(ec.system, ec.code):
                system = {"snomed": "sct", "icd10cm": "icd-10-cm", "loinc": "loinc.org",
                          "rxnorm": "rxnorm"}[ec.system]
                assert (system, ec.code) in got, (vid, ec.code)
        for sys_, code in got:
            key = {"sct": "snomed", "icd-10-cm": "icd10cm", "loinc.org": "loinc",
                   "rxnorm": "rxnorm"}.get(sys_)
            if key:
                assert cvs.contains(key, code), (vid, code)


def test_export_expresses_icd_ranges_and_sources(exported: dict[str, dict[str, object]]
                                                 ) -> None:
    mal = exported["malignancy-conditions"]
    compose = mal["compose"]
    assert isinstance(compose, dict)
    filters = {f["value"] for inc in compose["include"] for f in inc.get("filter", [])}
    assert {"C00", "C50", "C96"} <= filters and "D00" not in filters  # C00-C96 as is-a
    got = _contains(mal)
    assert ("icd-10-cm", "C50.911") in got  # the range expanded with descendants
    assert ("sct", "93761005") in got and ("sct", "302826002") not in got
    ids = {i["value"] for i in mal["identifier"]}  # type: ignore[index]
    assert ids == {"urn:oid:2.16.840.1.113883.3.526.3.1010",
                   "urn:oid:2.16.840.1.113762.1.4.1111.161"}
    preg = _contains(exported["pregnancy-conditions"])
    assert ("icd-10-cm", "Z32.01") in preg and ("icd-10-cm", "O00.101") in preg
    assert ("icd-10-cm", "Z3A.00") not in preg  # excluded
    assert ("icd-10-cm", "O14.05") not in preg  # pre-eclampsia complicating the puerperium
    imm = exported["immune-disorders"]
    assert ("icd-10-cm", "M35.7") not in _contains(imm)
    excl = imm["compose"]["exclude"]  # type: ignore[index]
    assert {c["code"] for inc in excl for c in inc.get("concept", [])} >= {"M35.7"}


def test_export_names_text_patterns_and_ingredients() -> None:
    kb = load_knowledge_base()
    res = valueset_resource(kb, kb.valuesets["anticoagulant-medications"], "2026-12-01")
    assert "enoxaparin" in str(res["description"]) and "Lovenox" in str(res["description"])


def test_export_writes_one_file_per_set(tmp_path: Path) -> None:
    kb = load_knowledge_base()
    paths = export_fhir(kb, tmp_path / "out", "2026-12-01T00:00:00+00:00")
    assert sorted(p.name for p in paths) == sorted(f"ValueSet-{v}.json" for v in kb.valuesets)
