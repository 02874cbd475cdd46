"""Server settings in one place: where data lives, who may call, how the clock reads.

Everything a deployment may change is a field here; tests build a ``Settings`` directly and
inject a clock instead of patching globals.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ENV_CDS_CLIENTS = "MSC_SCREEN_CDS_CLIENTS"
ENV_DB_URL = "MSC_SCREEN_DB"
ENV_SERVE_SETTINGS = "MSC_SCREEN_SERVE_SETTINGS"  # set by `serve --workers N`
DEFAULT_DB_FILE = "msc-screen.db"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def default_db_url() -> str:
    return os.environ.get(ENV_DB_URL) or f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Settings:
    """How one server instance runs. ``clock`` returns an aware UTC datetime."""

    host: str = "127.0.0.1"
    port: int = 8000
    db_url: str = field(default_factory=default_db_url)
    # JSON file listing trusted CDS clients; falls back to the env var (a path or inline JSON).
    cds_clients: str | None = None
    insecure_no_auth: bool = False
    # Public base URL the EHR calls (JWT ``aud`` and card links); default from the request.
    base_url: str | None = None
    # Data file with codes/texts identifying IV MSC orders; None = the packaged defaults.
    msc_orders_file: str | None = None
    policy: str | None = None
    # Budget for fetching from an EHR FHIR server during a hook call (seconds).
    fhir_deadline_s: float = 3.0
    fhir_page_limit: int = 20
    # Allowed clock skew for JWT exp/iat checks (seconds).
    jwt_leeway_s: int = 60
    clock: Callable[[], dt.datetime] = _utcnow
    # Extra keyword arguments for the FHIR httpx client (tests pass a transport).
    fhir_client_options: dict[str, object] = field(default_factory=dict)
    create_schema: bool = True
    # Browser origins allowed to call the API and CDS services (e.g. the CDS Hooks sandbox).
    cors_origins: list[str] = field(default_factory=list)
    # Keep seen JWT ids in the database (needed when several worker processes serve).
    shared_replay_cache: bool = False

    # Fields that survive a trip through the environment to uvicorn worker processes.
    _ENV_FIELDS = ("host", "port", "db_url", "cds_clients", "insecure_no_auth", "base_url",
                   "msc_orders_file", "policy", "fhir_deadline_s", "fhir_page_limit",
                   "jwt_leeway_s", "create_schema", "cors_origins",
                   "shared_replay_cache")

    def to_env(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self._ENV_FIELDS})

    @classmethod
    def from_env(cls, value: str) -> Settings:
        data = json.loads(value)
        return cls(**{k: v for k, v in data.items() if k in cls._ENV_FIELDS})

    def cds_clients_source(self) -> str | None:
        return self.cds_clients or os.environ.get(ENV_CDS_CLIENTS) or None

    def check(self) -> None:
        """Refuse unsafe combinations before serving."""
        if self.insecure_no_auth and not is_loopback(self.host):
            raise ValueError(
                f"--insecure-no-auth only serves loopback addresses, not {self.host!r}")
        if self.fhir_deadline_s <= 0:
            raise ValueError("fhir_deadline_s must be positive")
