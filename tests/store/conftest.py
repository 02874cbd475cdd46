"""Each storage test runs on SQLite and on a throwaway PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .pg import cluster, fresh_database


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, pytest.mark.xdist_group("postgres")])])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    with fresh_database(admin) as url:
        yield url
