"""Settings of the web pages that the server's ``Settings`` does not carry."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from ..config import Settings, is_loopback
from .throttle import Network, parse_proxies

ENV_SECRET = "MSC_SCREEN_SECRET_KEY"  # noqa: S105 (an environment variable name)
ENV_SECURE_COOKIES = "MSC_SCREEN_SECURE_COOKIES"
ENV_TRUSTED_PROXIES = "MSC_SCREEN_TRUSTED_PROXIES"
ENV_CLINIC_NAME = "MSC_SCREEN_CLINIC_NAME"
ENV_CLINIC_PHONE = "MSC_SCREEN_CLINIC_PHONE"
ENV_CLINIC_NEXT_STEPS = "MSC_SCREEN_CLINIC_NEXT_STEPS"


@dataclass
class WebConfig:
    """``cookie_secure`` is relaxed only when the server listens on a loopback address
    (plain-http development); ``MSC_SCREEN_SECURE_COOKIES=1`` forces it back on (e.g. behind
    a TLS proxy on the same host)."""

    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    cookie_secure: bool = True
    idle_timeout_s: int = 30 * 60
    invitation_ttl_s: int = 14 * 24 * 3600
    login_window_s: int = 15 * 60
    # sign-in backoff (web/throttle.py): failures before waits start, and the longest wait
    login_free_failures: int = 3
    login_max_wait_s: int = 30
    address_free_failures: int = 20
    address_max_wait_s: int = 60
    # proxies whose X-Forwarded-For is believed (addresses or networks)
    trusted_proxies: tuple[Network, ...] = ()
    max_upload_bytes: int = 50 * 1024 * 1024
    # shown to patients: who to call, and what happens after they send their answers
    clinic_name: str = "the clinic"
    clinic_phone: str | None = None
    next_steps: str = ("The clinic's team reviews your answers, usually within two working "
                       "days, and contacts you to arrange a consultation.")

    @classmethod
    def from_settings(cls, settings: Settings) -> WebConfig:
        secret = os.environ.get(ENV_SECRET)
        forced = os.environ.get(ENV_SECURE_COOKIES, "").strip() in ("1", "true", "yes")
        cfg = cls(cookie_secure=forced or not is_loopback(settings.host))
        if secret:
            cfg.secret_key = secret.encode()
        cfg.trusted_proxies = parse_proxies(os.environ.get(ENV_TRUSTED_PROXIES, ""))
        cfg.clinic_name = os.environ.get(ENV_CLINIC_NAME, "").strip() or cfg.clinic_name
        cfg.clinic_phone = os.environ.get(ENV_CLINIC_PHONE, "").strip() or None
        cfg.next_steps = os.environ.get(ENV_CLINIC_NEXT_STEPS, "").strip() or cfg.next_steps
        return cfg
