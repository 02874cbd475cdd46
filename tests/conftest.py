"""Shared fixtures. Reference data lives in ../shared/data (never copied into the project);
tests that need it skip with a visible reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SYNTHEA_DIR = SHARED_DATA / "synthea-r4"
NOTES_FILE = SHARED_DATA / "notes" / "mtsamples.jsonl.gz"
TEST_OUTPUT = ROOT / "test-output"


@pytest.fixture(scope="session")
def synthea_dir() -> Path:
    if not SYNTHEA_DIR.is_dir() or not any(SYNTHEA_DIR.glob("*.json.gz")):
        pytest.skip(f"shared Synthea bundles not found at {SYNTHEA_DIR}")
    return SYNTHEA_DIR


@pytest.fixture(scope="session")
def mtsamples_file() -> Path:
    if not NOTES_FILE.is_file():
        pytest.skip(f"shared MTSamples notes not found at {NOTES_FILE}")
    return NOTES_FILE


@pytest.fixture(scope="session")
def test_output() -> Path:
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT
