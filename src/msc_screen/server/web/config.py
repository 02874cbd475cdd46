"""Settings of the web pages that the server's ``Settings`` does not carry."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from ..config import Settings, is_loopback

ENV_SECRET = "MSC_SCREEN_SECRET_KEY"  # noqa: S105 (an environment variable name)
ENV_SECURE_COOKIES = "MSC_SCREEN_SECURE_COOKIES"


@dataclass
class WebConfig:
    """``cookie_secure`` is relaxed only when the server listens on a loopback address
    (plain-http development); ``MSC_SCREEN_SECURE_COOKIES=1`` forces it back on (e.g. behind
    a TLS proxy on the same host)."""

    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    cookie_secure: bool = True
    idle_timeout_s: int = 30 * 60
    invitation_ttl_s: int = 14 * 24 * 3600
    login_max_failures: int = 5
    login_window_s: int = 15 * 60
    max_upload_bytes: int = 50 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> WebConfig:
        secret = os.environ.get(ENV_SECRET)
        forced = os.environ.get(ENV_SECURE_COOKIES, "").strip() in ("1", "true", "yes")
        cfg = cls(cookie_secure=forced or not is_loopback(settings.host))
        if secret:
            cfg.secret_key = secret.encode()
        return cfg
