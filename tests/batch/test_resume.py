"""Crash safety: really SIGKILL a batch at several points, resume, compare with a clean run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from msc_screen.batch import plan

from .conftest import AS_OF, PATIENTS, batch, outputs

CLI = [sys.executable, "-c", "from msc_screen.cli import main; main()"]


def _cli(args: list[str], kill: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("MSC_SCREEN_BATCH_KILL", None)
    if kill:
        env["MSC_SCREEN_BATCH_KILL"] = kill
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def inputs(population, other_ndjson) -> list[Path]:
    """Bundles and an NDJSON export of other patients (both unit kinds, a partition phase)."""
    return [population["bundles"], other_ndjson]


@pytest.fixture(scope="module")
def clean(inputs, tmp_path_factory) -> dict[str, bytes]:
    return batch(inputs, tmp_path_factory.mktemp("clean") / "out")


@pytest.mark.slow
@pytest.mark.xdist_group("batch-resume")
@pytest.mark.parametrize("kill,workers", [
    ("partition:200", 1),   # while spilling the NDJSON export
    ("unit:1", 1),          # after the first unit is committed
    ("unit:3", 2),          # with worker processes running
    ("assemble:2", 1),      # after two units were appended to the outputs
    ("assemble:4", 2),      # appending while worker processes still screen
    ("finish:1", 1),        # outputs and report complete, not yet renamed
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
    assert clean["assessments.ndjson"].count(b"\n") == 2 * PATIENTS


@pytest.mark.slow
@pytest.mark.xdist_group("batch-resume")
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_after_outputs_are_renamed_then_resume(inputs, clean, tmp_path, workers):
    """Killed after the outputs were renamed into place but before ``.work`` was removed: the
    unit files whose assessment lines went straight into the (now renamed) temporary output
    must be screened again, not trusted."""
    out = tmp_path / "out"
    args = ["batch", *map(str, inputs), "--as-of", AS_OF.isoformat(), "--out", str(out),
            "--workers", str(workers)]
    killed = _cli(args, kill="done:1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert outputs(out) == clean and (out / ".work" / "manifest.json").exists()
    resumed = _cli([*args, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert outputs(out) == clean and not (out / ".work").exists()


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


def test_units_are_fixed_by_the_inputs(population):
    m1 = plan.make_plan([str(population["bundles"]), str(population["ndjson"])], {})
    m2 = plan.make_plan([str(population["bundles"]), str(population["ndjson"])], {})
    assert [u.paths for u in m1.units()] == [u.paths for u in m2.units()]
    per = plan.bundles_per_unit(PATIENTS)
    assert len(m1.bundle_units) == -(-PATIENTS // per) >= 4  # enough units to kill between
    for n in (90, 2_000, 20_000, 1_000_000):  # bounded unit size, enough units to balance
        per = plan.bundles_per_unit(n)
        assert plan.MIN_BUNDLES_PER_UNIT <= per <= plan.MAX_BUNDLES_PER_UNIT
        assert -(-n // per) >= min(plan.TARGET_UNITS // 2, n // plan.MIN_BUNDLES_PER_UNIT)


@pytest.mark.slow
@pytest.mark.xdist_group("batch-resume")
def test_resume_refuses_when_a_screened_bundle_changed(population, tmp_path):
    """The plan does not stat Bundle files; the unit that read one records its size and mtime,
    and --resume refuses if a screened file changed (an unscreened one may change freely)."""
    src = tmp_path / "in"
    shutil.copytree(population["bundles"], src)
    files = sorted(src.glob("*.json"))
    out = tmp_path / "out"
    args = ["batch", str(src), "--as-of", AS_OF.isoformat(), "--out", str(out)]
    assert _cli(args, kill="unit:1").returncode == -signal.SIGKILL
    files[-1].write_bytes(files[-1].read_bytes() + b"\n")  # a unit not screened yet: fine
    resumed = _cli([*args, "--resume"], kill="unit:1")
    assert resumed.returncode == -signal.SIGKILL, resumed.stderr
    first = files[0]
    first.write_bytes(first.read_bytes() + b" ")  # screened in the first unit
    refused = _cli([*args, "--resume"])
    assert refused.returncode == 2 and "input files changed" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("batch-resume")
def test_a_worker_killed_stops_the_run_clearly_and_resume_finishes_it(inputs, clean, tmp_path):
    """An out-of-memory kill of one worker must not hang the run (multiprocessing.Pool would
    wait forever for the lost unit) nor leave outputs that look complete."""
    out = tmp_path / "out"
    args = ["batch", *map(str, inputs), "--as-of", AS_OF.isoformat(), "--out", str(out),
            "--workers", "2"]
    died = _cli(args, kill="worker:2")  # each worker kills itself before its 2nd unit
    assert died.returncode == 1, died.stderr
    assert "worker process ended abruptly" in died.stderr and "--resume" in died.stderr
    assert "Traceback" not in died.stderr
    assert not (out / "assessments.ndjson").exists()
    resumed = _cli([*args, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert outputs(out) == clean
