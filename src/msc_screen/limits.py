"""Every size, depth and time limit on input, in one place, for every door.

Why one module: a limit checked at one door and forgotten at another is how a 2 MB ``.json.gz``
took a server to 6 GB. Each door reads its ``Limits`` from here (a profile, then the
environment, then its own flags/settings) and the reader, the request-body reader and the batch
partitioner enforce the same numbers. Exceeding one raises ``LimitExceeded`` (an
``InputError``) that names the input, the limit and how to raise it.

Profiles:

- ``CLINIC`` (``serve``: the REST API, CDS Hooks, web uploads): one person's record per request,
  many requests at once, memory shared by all of them.
- ``BATCH`` (``screen``, ``batch``, the Python API): large exports on a machine running one job.

Environment (either profile): ``MSC_SCREEN_LIMIT_<NAME>`` with NAME one of the field names in
upper case, e.g. ``MSC_SCREEN_LIMIT_DECOMPRESSED_BYTES=512MiB``, ``MSC_SCREEN_LIMIT_DEPTH=64``.
Sizes accept B, KiB, MiB, GiB (and KB, MB, GB as powers of ten).
"""

from __future__ import annotations

import dataclasses
import os
import re
import zlib
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass

from .errors import InputError

ENV_PREFIX = "MSC_SCREEN_LIMIT_"

KiB, MiB, GiB = 1024, 1024**2, 1024**3


@dataclass(frozen=True)
class Limits:
    """One door's limits. Sizes in bytes; 0 for ``deadline_s`` means no deadline."""

    input_bytes: int  # one input as stored or sent (compressed, if it is)
    decompressed_bytes: int  # one input after gunzip (a 1000:1 bomb stops here)
    request_bytes: int  # one HTTP request body (POST /screen, CDS Hooks)
    upload_bytes: int  # one web upload (the file; the form around it may add 64 KiB)
    page_bytes: int  # one page fetched from an EHR FHIR server, as sent
    page_decompressed_bytes: int  # the same page after Content-Encoding gzip
    depth: int  # nesting of what the reader builds: Bundles in Bundles, questionnaire items
    ndjson_line_bytes: int  # one NDJSON line (one resource)
    bundle_entries: int  # entries in one Bundle (nested Bundles counted in)
    string_chars: int  # one text the engine reads whole (a note, a document's text)
    deadline_s: float  # one request's screening time budget (servers)
    workers: int  # screening threads per server process (0: as many as CPU cores)
    queue: int  # requests waiting for a screening thread before 503 + Retry-After

    def with_overrides(self, values: Mapping[str, object]) -> Limits:
        """A copy with ``values`` (field name → number or size text) applied."""
        changes: dict[str, object] = {}
        for name, raw in values.items():
            if name not in _FIELDS:
                raise ValueError(f"unknown limit {name!r}; known: {', '.join(sorted(_FIELDS))}")
            changes[name] = _coerce(name, raw)
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def from_env(self, environ: Mapping[str, str] | None = None) -> Limits:
        """A copy with every ``MSC_SCREEN_LIMIT_<NAME>`` of the environment applied."""
        env = os.environ if environ is None else environ
        found = {k[len(ENV_PREFIX):].lower(): v for k, v in env.items()
                 if k.startswith(ENV_PREFIX)}
        try:
            return self.with_overrides(found)
        except ValueError as exc:
            raise ValueError(f"environment {ENV_PREFIX}*: {exc}") from None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def pool_size(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)


CLINIC = Limits(
    input_bytes=64 * MiB, decompressed_bytes=128 * MiB, request_bytes=64 * MiB,
    upload_bytes=50 * MiB, page_bytes=16 * MiB, page_decompressed_bytes=64 * MiB,
    depth=64, ndjson_line_bytes=16 * MiB, bundle_entries=200_000, string_chars=2_000_000,
    deadline_s=30.0, workers=0, queue=32,
)
BATCH = Limits(
    input_bytes=2 * GiB, decompressed_bytes=2 * GiB, request_bytes=64 * MiB,
    upload_bytes=50 * MiB, page_bytes=64 * MiB, page_decompressed_bytes=256 * MiB,
    depth=64, ndjson_line_bytes=64 * MiB, bundle_entries=500_000, string_chars=10_000_000,
    deadline_s=0.0, workers=0, queue=32,
)
PROFILES = {"clinic": CLINIC, "batch": BATCH}
_FIELDS = {f.name: f.type for f in dataclasses.fields(Limits)}


def profile(name: str, environ: Mapping[str, str] | None = None) -> Limits:
    """A named profile with the environment's overrides applied."""
    return PROFILES[name].from_env(environ)


_active: Limits | None = None


def current() -> Limits:
    """The process's limits: set by the door (``use``), else the batch profile + environment."""
    global _active
    if _active is None:
        _active = BATCH.from_env()
    return _active


def use(limits: Limits) -> Limits:
    """Make ``limits`` the process's (a server sets the clinic profile at start); returns the
    previous ones, so tests can restore them."""
    global _active
    prev = current()
    _active = limits
    return prev


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", re.I)
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": KiB, "ki": KiB, "m": 10**6,
          "mb": 10**6, "mib": MiB, "mi": MiB, "g": 10**9, "gb": 10**9, "gib": GiB, "gi": GiB,
          "t": 10**12, "tb": 10**12, "tib": 1024**4, "ti": 1024**4}


def parse_size(text: str | int) -> int:
    """``"512MiB"`` → 536870912; plain numbers are bytes."""
    if isinstance(text, int):
        return text
    m = _SIZE.fullmatch(str(text))
    unit = (m.group(2) or "").lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (e.g. 64MiB, 2GiB, 1000000)")
    return int(float(m.group(1)) * _UNITS[unit])


def _coerce(name: str, raw: object) -> float | int:
    kind = _FIELDS[name]
    text = raw if isinstance(raw, str | int | float) else str(raw)
    value: float | int
    try:
        if kind in ("float", float):
            value = float(text)
            ok = value >= 0
        elif name.endswith("_bytes"):
            value = parse_size(text if isinstance(text, str | int) else int(text))
            ok = value > 0
        else:
            value = int(text)
            ok = value >= 0 if name in ("workers", "queue") else value > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"limit {name}: {raw!r} is not a valid value")
    return value


def human(n: float) -> str:
    """Bytes in words: 64 MiB, 1.5 GiB, 900 bytes."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{int(n)} bytes"


def how_to_raise(name: str) -> str:
    return f"raise it with {ENV_PREFIX}{name.upper()} (or the door's --limit {name}=...)"


class LimitExceeded(InputError):
    """Input over a limit: names the input, the limit and how to raise it."""

    def __init__(self, source: str, name: str, limit: float, what: str, *,
                 line: int | None = None, resource: str | None = None,
                 field: str | None = None) -> None:
        self.limit_name = name
        self.limit = limit
        shown = human(limit) if name.endswith("_bytes") else f"{limit:,}"
        super().__init__(source, f"{what} exceeds the limit {name} = {shown}; "
                         f"{how_to_raise(name)}", line=line, resource=resource, field=field)


class CappedGunzip:
    """Streamed gunzip that stops at ``cap`` bytes out (multi-member files read in full).

    Feed compressed chunks; each call returns what they decompress to, never more than the
    cap allows, so a bomb costs ``cap`` bytes of memory and stops, not its full size."""

    def __init__(self, cap: int, source: str, limit_name: str = "decompressed_bytes") -> None:
        self.cap = cap
        self.source = source
        self.limit_name = limit_name
        self.total = 0
        self._d = zlib.decompressobj(wbits=31)

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        data = chunk
        while data:
            room = self.cap - self.total + 1
            try:
                piece = self._d.decompress(data, room)
            except zlib.error as exc:
                raise InputError(self.source, f"corrupt gzip data ({exc})") from None
            self._take(piece, out)
            if self._d.unconsumed_tail:
                data = self._d.unconsumed_tail
            elif self._d.eof:
                data = self._d.unused_data
                if data[:2] == b"\x1f\x8b":  # another gzip member follows
                    self._d = zlib.decompressobj(wbits=31)
                else:
                    data = b""  # trailing padding (zeros) after the last member
            else:
                data = b""
        return b"".join(out)

    def finish(self) -> bytes:
        out: list[bytes] = []
        self._take(self._d.flush(), out)
        if not self._d.eof:
            raise InputError(self.source, "corrupt gzip data (input ends early)")
        return b"".join(out)

    def _take(self, piece: bytes, out: list[bytes]) -> None:
        self.total += len(piece)
        if self.total > self.cap:
            raise LimitExceeded(self.source, self.limit_name, self.cap,
                                "decompressed size")
        out.append(piece)


def gunzip(data: bytes, cap: int, source: str) -> bytes:
    """``gzip.decompress`` that refuses to produce more than ``cap`` bytes."""
    g = CappedGunzip(cap, source)
    head = g.feed(data)
    return head + g.finish()


def check_size(n: int, cap: int, source: str, name: str, what: str = "size") -> None:
    if n > cap:
        raise LimitExceeded(source, name, cap, what)


async def collect(chunks: AsyncIterable[bytes], cap: int, source: str,
                  name: str = "request_bytes", what: str = "body") -> bytes:
    """Read a byte stream (a request body, an HTTP response) against ``cap``: stops reading at
    the first chunk past it, so a chunked 1 GiB body costs ``cap``, not 1 GiB."""
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > cap:
            raise LimitExceeded(source, name, cap, what)
        parts.append(chunk)
    return b"".join(parts)
