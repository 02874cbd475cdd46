"""Crash safety: really SIGKILL a batch at several points, resume, compare with a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from msc_screen.batch import plan

from .conftest import AS_OF, batch, outputs

CLI = [sys.executable, "-c", "from msc_screen.cli import main; main()"]


def _cli(args: list[str], kill: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("MSC_SCREEN_BATCH_KILL", None)
    if kill:
        env["MSC_SCREEN_BATCH_KILL"] = kill
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def inputs(population, tmp_path_factory) -> list[Path]:
    """Bundles and an NDJSON export together (both unit kinds, a partition phase)."""
    return [population["bundles"], population["ndjson"]]


@pytest.fixture(scope="module")
def clean(inputs, tmp_path_factory) -> dict[str, bytes]:
    return batch(inputs, tmp_path_factory.mktemp("clean") / "out")


@pytest.mark.slow
@pytest.mark.xdist_group("batch-resume")
@pytest.mark.parametrize("kill,workers", [
    ("partition:200", 1),   # while spilling the NDJSON export
    ("unit:1", 1),          # after the first unit is committed
    ("unit:3", 2),          # with worker processes running
    ("assemble:100", 1),    # while writing the final outputs
])
def test_kill_then_resume_equals_clean_run(inputs, clean, tmp_path, kill, workers):
    out = tmp_path / "out"
    args = ["batch", *map(str, inputs), "--as-of", AS_OF.isoformat(), "--out", str(out),
            "--workers", str(workers)]
    killed = _cli(args, kill=kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "assessments.ndjson").exists()
    assert (out / ".work" / "manifest.json").exists()
    resumed = _cli([*args, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert outputs(out) == clean


@pytest.mark.slow
@pytest.mark.xdist_group("batch-resume")
def test_repeated_kills_lose_and_duplicate_nothing(inputs, clean, tmp_path):
    """Kill after every unit, resuming each time, until the run completes."""
    out = tmp_path / "out"
    args = ["batch", *map(str, inputs), "--as-of", AS_OF.isoformat(), "--out", str(out)]
    first = _cli(args, kill="unit:2")
    assert first.returncode == -signal.SIGKILL
    for _ in range(20):
        r = _cli([*args, "--resume"], kill="unit:2")
        if r.returncode == 0:
            break
        assert r.returncode == -signal.SIGKILL, r.stderr
    assert outputs(out) == clean


def test_units_do_not_depend_on_workers(population):
    m1 = plan.make_plan([str(population["bundles"]), str(population["ndjson"])], {})
    assert [u.id for u in m1.units()] == [u.id for u in m1.units()]
    assert len(m1.bundle_units) == -(-90 // plan.BUNDLES_PER_UNIT)
