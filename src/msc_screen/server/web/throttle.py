"""Sign-in throttling that an attacker cannot turn against the account's owner.

Per account and per client address, failures within a window make the *next* attempt wait,
doubling each time (``2 ** (failures - free)`` seconds, capped); an attempt during the wait is
refused without checking the password, and once the wait is over the right password works.
Nothing locks an account or an address outright. The state lives in the database
(``login_throttle``), so every server process sees the same counts.

The client address is the connecting peer unless that peer is one of the configured proxies
(``MSC_SCREEN_TRUSTED_PROXIES``): only then is ``X-Forwarded-For`` read, right to left,
skipping the trusted hops.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ...store.clinic_models import LoginThrottleState

if TYPE_CHECKING:
    from .clinic import Clinic

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(text: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 192.168.0.0/24"`` → networks; a bad entry is an error naming it."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"MSC_SCREEN_TRUSTED_PROXIES: {part!r} is not an IP "
                                 "address or network") from None
    return tuple(out)


def _trusted(addr: str, proxies: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr.strip())
    except ValueError:
        return False
    return any(ip in n for n in proxies)


def client_address(peer: str | None, forwarded_for: str | None,
                   proxies: tuple[Network, ...]) -> str:
    """The address a request came from, trusting forwarded headers only from ``proxies``."""
    addr = peer or "unknown"
    if not proxies or not forwarded_for or not _trusted(addr, proxies):
        return addr
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        addr = hop
        if not _trusted(hop, proxies):
            break
    return addr


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class LoginThrottle:
    def __init__(self, clinic: Clinic) -> None:
        self.clinic = clinic
        cfg = clinic.config
        self.window = dt.timedelta(seconds=cfg.login_window_s)
        # per key prefix: failures allowed before waits start, and the longest wait
        self.policy = {"user": (cfg.login_free_failures, cfg.login_max_wait_s),
                       "ip": (cfg.address_free_failures, cfg.address_max_wait_s)}

    def wait_s(self, *keys: str) -> int:
        """Seconds until an attempt for these keys is considered (0: now)."""
        now = self.clinic.now()
        with self.clinic.read() as s:
            rows = s.scalars(select(LoginThrottleState)
                             .where(LoginThrottleState.key.in_(keys))).all()
        waits = [(_aware(r.wait_until) - now).total_seconds() for r in rows
                 if r.wait_until is not None]
        return max([0, *(math.ceil(w) for w in waits)])

    def _delay(self, key: str, failures: int) -> dt.timedelta | None:
        free, cap = self.policy.get(key.split(":", 1)[0], (3, 30))
        if failures <= free:
            return None
        return dt.timedelta(seconds=min(cap, 2 ** (failures - free - 1)))

    def failed(self, *keys: str) -> None:
        for key in keys:
            for _ in range(2):  # a concurrent first insert: the retry updates that row
                try:
                    self._fail(key)
                    break
                except IntegrityError:
                    continue

    def _fail(self, key: str) -> None:
        now = self.clinic.now()
        with self.clinic.write() as s:
            # one atomic increment, so two processes cannot both count from the same number
            got = s.execute(update(LoginThrottleState).where(LoginThrottleState.key == key)
                            .values(failures=LoginThrottleState.failures + 1)
                            .returning(LoginThrottleState.failures,
                                       LoginThrottleState.window_start)).first()
            if got is None:
                s.add(LoginThrottleState(key=key, failures=1, window_start=now))
                s.flush()
                return
            failures, start = int(got[0]), _aware(got[1])
            if now - start > self.window:  # a new window: this failure is its first
                failures, start = 1, now
            delay = self._delay(key, failures)
            s.execute(update(LoginThrottleState).where(LoginThrottleState.key == key)
                      .values(failures=failures, window_start=start,
                              wait_until=now + delay if delay else None))

    def succeeded(self, *keys: str) -> None:
        with self.clinic.write() as s:
            for key in keys:
                row = s.get(LoginThrottleState, key)
                if row is not None:
                    s.delete(row)
