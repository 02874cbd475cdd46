"""Spark engine: the same outputs as the local engine (one JVM start for the whole group)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import AS_OF, LONE_BUNDLE, LONE_NDJSON, PATIENTS, batch, outputs
from .test_resume import _cli

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
    assert local["assessments.ndjson"].count(b"\n") == 2 * PATIENTS + len(synthea)
    # the same patients as Bundles and as NDJSON: each flagged once, by both engines
    assert local["errors.ndjson"].count(b"more than one input") == PATIENTS


def test_spark_and_resume_equal_local_with_complete(java, lone, tmp_path):
    """--complete reaches the Spark executors, and a local run killed midway and resumed on
    Spark gives the same bytes (coverage column and report table included)."""
    local = batch(lone, tmp_path / "local", workers=2, complete="all")
    spark = batch(lone, tmp_path / "spark", workers=2, engine="spark", complete="all")
    assert spark == local
    out = tmp_path / "resumed"
    args = ["batch", *map(str, lone), "--as-of", AS_OF.isoformat(), "--out", str(out),
            "--complete", "all"]
    killed = _cli(args, kill="unit:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _cli([*args, "--resume", "--engine", "spark", "--workers", "2"])
    assert resumed.returncode == 0, resumed.stderr
    assert outputs(out) == local
    # and --complete changed what the lone records are: no longer short of data
    default = batch(lone, tmp_path / "default", workers=2)
    for pid in (LONE_BUNDLE, LONE_NDJSON):
        assert f"{pid},no-contraindication-found,".encode() in local["summary.csv"]
        assert f"{pid},needs-information,".encode() in default["summary.csv"]


def test_cli_spark_run_keeps_jvm_logging_off_stderr(java, population, tmp_path):
    """A fresh JVM (its own process): no log4j WARN/INFO lines, banner or progress bar."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-c", "from msc_screen.cli import main; main()",
                        "batch", str(population["bundles"]), "--as-of", AS_OF.isoformat(),
                        "--out", str(out), "--engine", "spark", "--workers", "2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (out / "assessments.ndjson").read_bytes().count(b"\n") == PATIENTS
    noisy = [line for line in r.stderr.splitlines()
             if re.search(r"\b(WARN|INFO)\b|log4j|default log level|setLogLevel|\[Stage \d", line)]
    assert noisy == [], r.stderr
    assert f"{PATIENTS} patients screened" in r.stderr
