"""Helpers for the web tests: an app on a temp SQLite file, a CSRF-aware test client, and a
real uvicorn server on a free port."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from msc_screen.server.app import create_app
from msc_screen.server.config import Settings

PASSWORDS = {"staff1": "staff-password-1", "doc1": "doctor-password-1",
             "admin1": "admin-password-1"}
ROLES = {"staff1": "staff", "doc1": "physician", "admin1": "admin"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def make_app(tmp: Path, clock: Clock | None = None, host: str = "127.0.0.1",
             users: bool = True) -> FastAPI:
    settings = Settings(host=host, db_url=f"sqlite:///{tmp / 'web.db'}")
    if clock is not None:
        settings.clock = clock
    app = create_app(settings)
    if users:
        for name, pw in PASSWORDS.items():
            app.state.clinic.create_user(name, pw, ROLES[name])
    return app


def csrf(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "page has no CSRF token"
    return m.group(1)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


class Browser:
    """A TestClient that posts forms the way a browser would (token from the page)."""

    def __init__(self, client: TestClient | httpx.Client) -> None:
        self.c = client

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.c.get(url, **kw)

    def submit(self, page_url: str, action: str, data: dict[str, Any],
               **kw: Any) -> httpx.Response:
        page = self.c.get(page_url)
        return self.c.post(action, data={**data, "csrf_token": csrf(page.text)}, **kw)

    def login(self, name: str) -> httpx.Response:
        r = self.submit("/login", "/login", {"username": name, "password": PASSWORDS[name]},
                        follow_redirects=False)
        assert r.status_code == 303, r.text
        return r

    def new_patient(self, name: str = "Ann Test", gender: str = "female",
                    birth: str = "1990-01-01") -> int:
        r = self.submit("/clinic", "/clinic/patients",
                        {"name": name, "gender": gender, "birth_date": birth},
                        follow_redirects=False)
        assert r.status_code == 303, r.text
        return int(r.headers["location"].rsplit("/", 1)[1])

    def invite(self, pid: int) -> str:
        # post/redirect/get: the new link is shown once on the page the POST redirects to
        r = self.submit(f"/clinic/patients/{pid}", f"/clinic/patients/{pid}/invite", {},
                        follow_redirects=True)
        m = re.search(r'https?://[^/]+(/p/[A-Za-z0-9_\-]+)</code>', r.text)
        assert m, "no invitation link on the page"
        return m.group(1)


def answer_all(b: Browser, link: str, answers: dict[str, str]) -> httpx.Response:
    """Walk every section of the questionnaire posting ``answers``; returns the last reply."""
    r = b.get(f"{link}/section/0")
    n = 0
    while True:
        r = b.c.post(f"{link}/section/{n}", data={**answers, "csrf_token": csrf(r.text),
                                                   "action": "next"}, follow_redirects=False)
        assert r.status_code == 303, text(r.text)[:500]
        loc = r.headers["location"]
        r = b.get(loc)
        if loc.endswith("/review"):
            return r
        n += 1


def free_socket() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on a free loopback port (in a thread)."""
    import uvicorn

    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(15)
        sock.close()


def baseline_answers(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """A 'no' (or first option) to every required question of the live questionnaire."""
    from msc_screen.questionnaire import build_form

    out: dict[str, str] = {}
    form = build_form()
    for q in form.questions:
        # conditions on the pre-filled patient items (sex, age) are met for this patient
        if not q.required or any(ew.question not in form.context_ids for ew in q.enable_when):
            continue
        if q.type == "boolean":
            out[q.link_id] = "false"
        elif q.options:
            codes = [o.code for o in q.options]
            out[q.link_id] = "no" if "no" in codes else codes[0]
        elif q.type in ("integer", "decimal"):
            out[q.link_id] = "0"
        elif q.type == "date":
            out[q.link_id] = "2020-01-01"
        else:
            out[q.link_id] = "none"
    out.update(overrides or {})
    return out
