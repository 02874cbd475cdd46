"""Two batch runs into one --out: the second refuses while the first holds the lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from msc_screen.batch.runner import OutLocked, out_lock


def test_second_run_into_the_same_out_refuses(tmp_path: Path) -> None:
    with out_lock(tmp_path / "out"):
        with pytest.raises(OutLocked) as exc, out_lock(tmp_path / "out"):
            pass
        assert "another msc-screen batch run" in str(exc.value)
        assert str(tmp_path / "out") in str(exc.value)
    with out_lock(tmp_path / "out"):  # released: a later run (or --resume) proceeds
        pass
