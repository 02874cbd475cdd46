from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from .helpers import Browser, Clock, make_app


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def web(tmp_path: Path, clock: Clock) -> Iterator[tuple[TestClient, Browser]]:
    app = make_app(tmp_path, clock)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c, Browser(c)


def new_browser(client: TestClient) -> Browser:
    """Another browser (own cookies) on the same app."""
    return Browser(TestClient(client.app, base_url="http://127.0.0.1"))
