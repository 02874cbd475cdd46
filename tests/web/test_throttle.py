"""Issue 15 item 6: sign-in backoff that cannot lock the right user out, per address too,
shared by every process (two apps on one database stand in for two workers), and
X-Forwarded-For believed only from configured proxies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from msc_screen.server.web.throttle import client_address, parse_proxies

from .helpers import PASSWORDS, Browser, Clock, make_app


def _try(b: Browser, user: str, pw: str, **headers: str) -> int:
    page = b.get("/login")
    from .helpers import csrf

    r = b.c.post("/login", data={"username": user, "password": pw,
                                 "csrf_token": csrf(page.text)},
                 headers=headers, follow_redirects=False)
    return r.status_code


def test_backoff_is_shared_by_two_workers_and_lets_the_owner_in(tmp_path: Path) -> None:
    clock = Clock()
    one = make_app(tmp_path, clock)
    two = make_app(tmp_path, clock, users=False)  # a second process on the same database
    with TestClient(one, base_url="http://127.0.0.1") as c1, \
            TestClient(two, base_url="http://127.0.0.1") as c2:
        b1, b2 = Browser(c1), Browser(c2)
        codes = [_try(b1 if i % 2 else b2, "doc1", "wrong") for i in range(4)]
        assert codes == [401, 401, 401, 401]
        # the fourth failure (either worker) makes the next attempt wait, on both
        assert _try(b1, "doc1", PASSWORDS["doc1"]) == 429
        assert _try(b2, "doc1", PASSWORDS["doc1"]) == 429
        clock.advance(1.5)
        assert _try(b2, "doc1", "wrong") == 401  # 5th failure: now 2 s
        clock.advance(1)
        assert _try(b1, "doc1", PASSWORDS["doc1"]) == 429
        clock.advance(1.5)
        assert _try(b1, "doc1", PASSWORDS["doc1"]) == 303  # the owner gets in after the wait
        # the wait never grows past the cap however many failures an attacker sends
        for _ in range(30):
            clock.advance(31)
            _try(b2, "doc1", "wrong")
        clock.advance(31)
        assert _try(b1, "doc1", PASSWORDS["doc1"]) == 303


def test_one_address_guessing_many_accounts_waits_but_others_do_not(tmp_path: Path) -> None:
    clock = Clock()
    app = make_app(tmp_path, clock)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        b = Browser(c)
        for i in range(21):  # 20 free failures per address, each on another account
            clock.advance(5)  # each account fails once: only the address counts up
            assert _try(b, f"user{i}", "guess") == 401
        assert _try(b, "staff1", PASSWORDS["staff1"]) == 429  # the address waits
        clock.advance(2)
        assert _try(b, "staff1", PASSWORDS["staff1"]) == 303


def test_forwarded_for_is_believed_only_from_configured_proxies() -> None:
    proxies = parse_proxies("10.0.0.1, 192.168.1.0/24")
    assert client_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"
    assert client_address("10.0.0.1", "198.51.100.7", proxies) == "198.51.100.7"
    # a client-supplied first hop is not believed past the last untrusted hop
    assert client_address("10.0.0.1", "6.6.6.6, 198.51.100.7, 192.168.1.5",
                          proxies) == "198.51.100.7"
    assert client_address("10.0.0.1", None, proxies) == "10.0.0.1"
    assert client_address("10.0.0.1", "1.2.3.4", ()) == "10.0.0.1"
    with pytest.raises(ValueError, match="not-an-ip"):
        parse_proxies("not-an-ip")


def test_spoofed_forwarded_for_does_not_escape_the_address_limit(tmp_path: Path) -> None:
    clock = Clock()
    app = make_app(tmp_path, clock)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        b = Browser(c)
        for i in range(21):
            clock.advance(5)
            _try(b, f"user{i}", "guess", **{"X-Forwarded-For": f"10.9.0.{i}"})
        assert _try(b, "staff1", PASSWORDS["staff1"], **{"X-Forwarded-For": "10.9.9.9"}) == 429


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, pytest.mark.xdist_group("postgres")])])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    from store.pg import cluster, fresh_database  # tests/store (rootdir on sys.path)

    with cluster() as admin, fresh_database(admin) as url:
        yield url


def test_concurrent_failures_in_two_processes_all_count(shared_db: str) -> None:
    """Failures sent at once to two apps on one database (SQLite or PostgreSQL) are each
    counted: the increment is one atomic UPDATE, so none is lost to a race."""
    import threading

    from sqlalchemy import select

    from msc_screen.server.app import create_app
    from msc_screen.server.config import Settings
    from msc_screen.store.clinic_models import LoginThrottleState

    clock = Clock()
    apps = []
    for _ in range(2):
        settings = Settings(host="127.0.0.1", db_url=shared_db)
        settings.clock = clock
        apps.append(create_app(settings))
    clinics = [a.state.clinic for a in apps]
    start = threading.Barrier(10)

    def fail(i: int) -> None:
        start.wait()
        clinics[i % 2].throttle.failed("user:doc1")

    threads = [threading.Thread(target=fail, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with clinics[0].read() as s:
        row = s.scalar(select(LoginThrottleState).where(LoginThrottleState.key == "user:doc1"))
    assert row is not None and row.failures == 10
    assert clinics[1].throttle.wait_s("user:doc1") == 30  # capped, seen by the other process
