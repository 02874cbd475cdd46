"""Shared synthetic populations for the batch tests (small: correctness, not scale)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import orjson
import pytest

from msc_screen.batch import BatchOptions, run_batch
from msc_screen.synth import SynthConfig, generate

AS_OF = dt.date(2026, 1, 1)
SEED = 11
PATIENTS = 90


@pytest.fixture(scope="session")
def population(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same patients as per-patient Bundles and as a Bulk Data NDJSON export."""
    root = tmp_path_factory.mktemp("population")
    bundles, ndjson = root / "bundles", root / "ndjson"
    generate(SynthConfig(PATIENTS, bundles, "bundles", SEED, AS_OF))
    generate(SynthConfig(PATIENTS, ndjson, "ndjson", SEED, AS_OF))
    return {"bundles": bundles, "ndjson": ndjson}


@pytest.fixture(scope="session")
def other_ndjson(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NDJSON export of other patients (another seed, so other ids): mixed with
    ``population["bundles"]`` it gives both unit kinds and no patient twice."""
    out = tmp_path_factory.mktemp("other") / "ndjson"
    generate(SynthConfig(PATIENTS, out, "ndjson", SEED + 1, AS_OF))
    return out


LONE_BUNDLE, LONE_NDJSON = "lone-bundle", "lone-ndjson"  # records holding a Patient alone


def _patient(pid: str) -> dict[str, str]:
    return {"resourceType": "Patient", "id": pid, "gender": "male", "birthDate": "1960-05-01"}


@pytest.fixture(scope="session")
def lone(population: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The synthetic population's Bundles plus a patient-only Bundle, and an NDJSON export of
    one patient-only record (both unit kinds; no clinical data for either)."""
    root = tmp_path_factory.mktemp("lone")
    bundles = root / "bundles"
    shutil.copytree(population["bundles"], bundles)
    (bundles / f"{LONE_BUNDLE}.json").write_bytes(orjson.dumps(
        {"resourceType": "Bundle", "type": "collection",
         "entry": [{"resource": _patient(LONE_BUNDLE)}]}))
    export = root / "export"
    export.mkdir()
    (export / "Patient.ndjson").write_bytes(orjson.dumps(_patient(LONE_NDJSON)) + b"\n")
    return [bundles, export]


def batch(inputs: list[Path], out: Path, **kw: object) -> dict[str, bytes]:
    run_batch(BatchOptions(inputs=[str(p) for p in inputs], as_of=AS_OF, out=out, **kw))  # type: ignore[arg-type]
    return outputs(out)


def outputs(out: Path) -> dict[str, bytes]:
    names = ("assessments.ndjson", "summary.csv", "summary.parquet", "errors.ndjson",
             "report.html", "terminology-audit.csv")
    return {n: (out / n).read_bytes() for n in names}


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
