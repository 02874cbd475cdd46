"""Spark engine: the same outputs as the local engine (one JVM start for the whole group)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import batch

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.xdist_group("spark")]


@pytest.fixture(scope="module")
def java() -> None:
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (scripts/ensure-java.sh installs one)")


def test_spark_equals_local_on_synthetic_and_synthea(java, population, synthea_dir, tmp_path):
    synthea = sorted(synthea_dir.glob("*.json.gz"))[:12]
    inputs: list[Path] = [population["bundles"], population["ndjson"], *synthea]
    local = batch(inputs, tmp_path / "local", workers=2)
    spark = batch(inputs, tmp_path / "spark", workers=2, engine="spark")
    assert spark == local
    assert local["assessments.ndjson"].count(b"\n") == 2 * 90 + len(synthea)
