"""Fixtures for the HTTP door: apps with an injected clock, a live uvicorn server, a fake
FHIR server over a Synthea patient, and the CDS Hooks spec's example ES384 key pair."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

from msc_screen import screen
from msc_screen.server.config import Settings

from .fakefhir import load_synthea, make_app

# The example key pair published in the CDS Hooks specification (security section).
SPEC_PRIVATE_JWK = {
    "kty": "EC", "use": "sig", "crv": "P-384", "kid": "example-kid", "alg": "ES384",
    "d": "SeFXUXda8UomZ8GFUl7HH_Oi15rIbfMcsWj9ecIsDR8kLbqsEz2CGNgwy_IcILxy",
    "x": "46SDH7Znh821wblCBglA61sNE9ZrHYKKt3qRtRTmSXyOI_FIGBLWrWa0GPUkDCEk",
    "y": "XMcRuuoGW7CXjQdy-F5i3FeBE0x9hPLdeFdSoDd3ELmx404tLX0VRRcqzAsPhXcI",
}
SPEC_PUBLIC_JWKS = {"keys": [{k: v for k, v in SPEC_PRIVATE_JWK.items() if k != "d"}]}
SPEC_ISS = "https://fhir-ehr.example.com/"
SPEC_JKU = "https://fhir-ehr.example.com/jwk_uri"
# The complete JWT printed in the specification for the header and payload above.
SPEC_JWT = (
    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6ImV4YW1wbGUta2lkIiwiamt1IjoiaHR0cHM6Ly9maGly"
    "LWVoci5leGFtcGxlLmNvbS9qd2tfdXJpIn0.eyJpc3MiOiJodHRwczovL2ZoaXItZWhyLmV4YW1wbGUuY29tLyIs"
    "InN1YiI6ImNsaWVudF9pZCIsImF1ZCI6Imh0dHBzOi8vY2RzLmV4YW1wbGUub3JnL2Nkcy1zZXJ2aWNlcy9zb21l"
    "LXNlcnZpY2UiLCJleHAiOjE0MjI1Njg4NjAsImlhdCI6MTMxMTI4MDk3MCwianRpIjoiZWUyMmIwMjEtZTFiNy00"
    "NjExLWJhNWItOGVlYzZhMzNhYzFlIiwidGVuYW50IjoiMmRkZDZjM2EtOGU5YS00NGM2LWEzMDUtNTIxMTFhZDMw"
    "MmEyIn0.CUFPkplnWd6YGIvzoHolWCQBDsCL8QtTWKGg_QFpS169WrqDGzktRi-_we6-6rVzbjerU27ZKww_SW0-"
    "b9RTz-dPJNcqsueMio8r6EqXUXhbLm_ch3XFSbDlGHDl_tqo"
)

NOW = dt.datetime(2019, 12, 31, 12, 0, tzinfo=dt.UTC)  # Synthea records end in 2019


def clock() -> dt.datetime:
    return NOW


def b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def sign(aud: str, *, iss: str = SPEC_ISS, now: dt.datetime = NOW, exp_in: int = 300,
         jti: str | None = None, header: dict[str, Any] | None = None,
         key: dict[str, Any] = SPEC_PRIVATE_JWK, drop: tuple[str, ...] = ()) -> str:
    """A client JWT signed with the spec's example key (ES384)."""
    t = int(now.timestamp())
    claims = {"iss": iss, "sub": "client_id", "aud": aud, "exp": t + exp_in, "iat": t,
              "jti": jti or str(uuid.uuid4()), "tenant": "2ddd6c3a"}
    for d in drop:
        claims.pop(d, None)
    hdr = {"alg": "ES384", "typ": "JWT", "kid": "example-kid", **(header or {})}
    return jwt.encode(hdr, claims, ECKey.import_key(key), algorithms=[hdr["alg"]])


def settings_for(tmp_path: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = {"db_url": f"sqlite:///{tmp_path / 'test.db'}", "clock": clock}
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**kw: Any) -> Settings:
        return settings_for(tmp_path, **kw)
    return make


@pytest.fixture
def clients_file(tmp_path: Path) -> str:
    p = tmp_path / "clients.json"
    p.write_text(json.dumps([{"iss": SPEC_ISS, "jwks": SPEC_PUBLIC_JWKS}]))
    return str(p)


class LiveServer:
    """An ASGI app under uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_level="warning", lifespan="on",
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_app() -> Callable[[FastAPI], LiveServer]:
    return LiveServer


@pytest.fixture(scope="session")
def synthea_patient(synthea_dir: Path) -> dict[str, Any]:
    """A small Synthea patient with at least one present finding on 2019-12-31."""
    files = sorted(synthea_dir.glob("*.json.gz"), key=lambda p: p.stat().st_size)[:25]
    chosen = files[0]
    for f in files:
        a = screen(f, as_of=NOW.date())
        if any(x.status == "present" and x.severity in ("contraindicated", "physician-review")
               for x in a.findings):
            chosen = f
            break
    resources = load_synthea(chosen)
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    return {"path": chosen, "resources": resources, "id": pid}


@pytest.fixture(scope="session")
def fake_fhir(synthea_patient: dict[str, Any]) -> Iterator[Any]:
    """A running fake FHIR server (page size 15 so searches span several pages)."""
    app = make_app(synthea_patient["resources"], page_size=15)
    with LiveServer(app) as srv:
        srv.app = app
        srv.base = srv.url + "/fhir"
        yield srv
