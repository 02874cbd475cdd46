"""Turn files, bytes and parsed JSON into FHIR resources, with errors that name the source.

A file is read whole or rejected whole: half a record screened as if complete is the silent
failure this project exists to prevent.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson

from .. import limits as _limits
from ..errors import InputError
from ..limits import LimitExceeded, Limits
from .structs import _READ, RESOURCE_DECODER, UNTYPED_DECODER, Bundle, FBase

SUFFIXES = (".json", ".ndjson", ".jsonl", ".json.gz", ".ndjson.gz", ".jsonl.gz")
MAX_BYTES = 2 * 1024**3  # the batch profile's input_bytes (kept for callers)
_FIELD_SHOWN = 200  # a JSON path in a message, at most (10,000-deep paths are not messages)


@dataclass
class ReadResult:
    """The resources of one source, in document order, with each one's fullUrl."""

    source: str
    resources: list[tuple[FBase, str | None, int | None]] = field(default_factory=list)
    ndjson: bool = False
    error: InputError | None = None


def is_ndjson(name: str) -> bool:
    """NDJSON by file name (``.ndjson``, ``.jsonl``, either gzipped)."""
    return name.lower().removesuffix(".gz").endswith((".ndjson", ".jsonl"))


def iter_paths(paths: Iterable[str | Path]) -> Iterator[str | InputError]:
    """Expand directories (sorted, recursive) to FHIR files; a missing path is an error."""
    for raw in paths:
        yield from _scan(raw)


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path | InputError]:
    """``iter_paths`` as ``Path`` objects."""
    for item in iter_paths(paths):
        yield item if isinstance(item, InputError) else Path(item)


def _scan(raw: str | Path) -> Iterator[str | InputError]:
    """One input path's FHIR files, sorted by path components (a NUL separator sorts below
    every character of a name), without a ``stat`` per file: directories are walked with
    ``os.scandir`` (file types come from the listing; symlinked directories are not entered).
    A directory or entry that cannot be read is an error, never skipped silently (``rglob``
    would skip it, and its patients with it)."""
    p = Path(raw)
    if p.is_dir():
        found: list[tuple[str, str]] = []
        unreadable: list[InputError] = []  # never skipped silently: patients could be missing
        stack = [str(p)]
        while stack:
            d = stack.pop()
            try:
                entries = list(os.scandir(d))
            except OSError as exc:
                unreadable.append(InputError(d, f"cannot list directory ({exc.strerror})"))
                continue
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.name.lower().endswith(SUFFIXES) and e.is_file():
                        found.append((e.path.replace(os.sep, "\0"), e.path))
                except OSError as exc:
                    unreadable.append(InputError(e.path, f"cannot read ({exc.strerror})"))
        yield from sorted(unreadable, key=lambda x: x.source)
        if not found and not unreadable:
            yield InputError(str(p), "directory holds no .json, .ndjson or .gz FHIR files")
        found.sort()
        for _, path in found:
            yield path
    elif p.is_file():
        yield str(p)
    elif p.exists():
        yield InputError(str(p), "not a regular file")
    else:
        yield InputError(str(p), "no such file or directory")


def _maybe_gunzip(data: bytes, source: str, lim: Limits) -> bytes:
    """Gunzip (streamed, stopped at ``decompressed_bytes``) when the bytes are gzip."""
    if data[:2] == b"\x1f\x8b":
        return _limits.gunzip(data, lim.decompressed_bytes, source)
    return data


def slurp(path: str | Path, lim: Limits | None = None) -> tuple[bytes, os.stat_result]:
    """A whole file and its stat from one descriptor: ``os.read`` of the known size skips the
    buffered layer and its second read (half the cost for the small files of a Bundle
    directory). Raises OSError, or ``LimitExceeded`` above the ``input_bytes`` limit (checked
    before reading, and while reading a pipe)."""
    cap = (lim or _limits.current()).input_bytes
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if st.st_size > cap:
            raise LimitExceeded(str(path), "input_bytes", cap, f"file size {st.st_size:,} bytes")
        data = os.read(fd, st.st_size + 1)
        if not stat.S_ISREG(st.st_mode) or len(data) > st.st_size:
            # a pipe or device (no size), or a file that grew since fstat: read to the end
            parts = [data]
            total = len(data)
            while chunk := os.read(fd, 1 << 20):
                total += len(chunk)
                if total > cap:
                    raise LimitExceeded(str(path), "input_bytes", cap, "input size")
                parts.append(chunk)
            data = b"".join(parts)
        return data, st
    finally:
        os.close(fd)


def read_file(path: Path, lim: Limits | None = None) -> ReadResult:
    source = str(path)
    try:
        data, _ = slurp(path, lim)
    except OSError as exc:
        return ReadResult(source, error=InputError(source, f"cannot read ({exc.strerror})"))
    except InputError as exc:
        return ReadResult(source, error=exc)
    return read_bytes(data, source, ndjson=is_ndjson(path.name), limits=lim)


def read_bytes(data: bytes, source: str = "<bytes>", *, ndjson: bool | None = None,
               limits: Limits | None = None) -> ReadResult:
    """Total: any bad input (size, gzip, encoding, nesting, numbers, types) is the result's
    ``error`` naming source, line, resource and field, never an exception."""
    lim = limits or _limits.current()
    try:
        return _read_bytes(data, source, ndjson, lim)
    except InputError as exc:
        return ReadResult(source, error=exc)
    except RecursionError:
        return ReadResult(source, error=LimitExceeded(
            source, "depth", lim.depth, "JSON nested too deeply: nesting (the decoder stops at about 500 "
            "levels)"))
    except UnicodeDecodeError as exc:
        return ReadResult(source, error=InputError(
            source, f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start:,} of the decoded text); FHIR JSON must be UTF-8"))
    except (ValueError, OverflowError, TypeError) as exc:  # a decoder's range or type error
        return ReadResult(source, error=InputError(
            source, f"unreadable value ({type(exc).__name__}: {str(exc)[:120]})"))


def _read_bytes(data: bytes, source: str, ndjson: bool | None, lim: Limits) -> ReadResult:
    data = _maybe_gunzip(data, source, lim)
    if len(data) > lim.decompressed_bytes:
        raise LimitExceeded(source, "decompressed_bytes", lim.decompressed_bytes, "input size")
    if not data or data.isspace():
        raise InputError(source, "empty input")
    if ndjson:
        return _read_ndjson(data, source, lim)
    try:
        top = RESOURCE_DECODER.decode(data)
    except UnicodeDecodeError as exc:
        raise _utf8_error(data, source, exc, None) from None
    except msgspec.DecodeError as exc:
        msg = str(exc)
        if ndjson is None and "trailing characters" in msg and data.lstrip()[:1] == b"{":
            return _read_ndjson(data, source, lim)
        if "missing required field `resourceType`" in msg and not _is_object(data):
            raise InputError(source, "top-level JSON value is not an object, expected a "
                             "FHIR resource or Bundle") from None
        raise _decode_error(exc, data, source, None, lim) from None
    result = ReadResult(source)
    _collect(top, None, source, result, None, _Budget(lim, source, None), 0)
    return result


def _utf8_error(data: bytes, source: str, exc: UnicodeDecodeError,
                line: int | None) -> InputError:
    """Where the bad byte is: msgspec reports the offset in the string it was decoding, so the
    first invalid sequence of the input is found (cheaply, with the codec) for the message."""
    try:
        data.decode("utf-8")
        at = None
    except UnicodeDecodeError as e:
        at = e.start
    where = f" at byte {at:,}" if at is not None else ""
    if at is not None and line is None and b"\n" in data[:at]:
        line = data.count(b"\n", 0, at) + 1
    return InputError(source, f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x}{where}); "
                      "FHIR JSON must be UTF-8", line=line)


def _read_ndjson(data: bytes, source: str, lim: Limits) -> ReadResult:
    result = ReadResult(source, ndjson=True)
    decoded = 0
    cap = lim.ndjson_line_bytes
    budget = _Budget(lim, source, None)
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > cap:
            raise LimitExceeded(source, "ndjson_line_bytes", cap,
                                f"line of {len(line):,} bytes", line=lineno)
        try:
            res = RESOURCE_DECODER.decode(line)
        except UnicodeDecodeError as exc:
            raise _utf8_error(line, source, exc, lineno) from None
        except msgspec.DecodeError as exc:
            raise _decode_error(exc, line, source, lineno, lim) from None
        decoded += 1
        budget.line = lineno
        _collect(res, None, source, result, lineno, budget, 0)
    if not decoded:
        raise InputError(source, "no FHIR resources in NDJSON input")
    return result


def _decode_error(exc: msgspec.DecodeError, data: bytes, source: str,
                  line: int | None, lim: Limits) -> InputError:
    msg = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        # "Expected `str | null`, got `int` - at `$.entry[3].resource.onsetDateTime`"
        reason, _, path = msg.partition(" - at ")
        path = path.strip("`")
        if len(path) > _FIELD_SHOWN:  # a 10,000-deep path: its start and end
            path = f"{path[:80]}...{path[-100:]}"
        if path.endswith("resourceType") and reason.startswith("Invalid value"):
            value = reason.removeprefix("Invalid value").strip()
            return InputError(source, f"unknown resourceType {value}", line=line,
                              resource=_resource_at(data, path.rsplit(".", 1)[0]),
                              field=path)
        if "missing required field `resourceType`" in reason:
            return InputError(source, "no resourceType: not a FHIR resource", line=line,
                              field=(path + ".resourceType") if path else "resourceType")
        if reason.startswith("Expected `object`") and path in ("", "$"):
            kind = reason.split("got `")[-1].rstrip("`")
            return InputError(source, f"top-level JSON value is {kind_article(kind)}, expected a "
                              "FHIR resource or Bundle", line=line)
        resource = _resource_at(data, path) if "..." not in path else None
        if "out of range" in reason:
            reason = f"{reason} (a number too large or too small to be a real value)"
        return InputError(source, f"wrong type: {reason}", line=line, resource=resource,
                          field=path or None)
    if "truncated" in msg:
        return InputError(source, "truncated JSON (input ends early)", line=line)
    if "recursion" in msg.lower() or "depth" in msg.lower() or "nested" in msg.lower():
        return LimitExceeded(source, "depth", lim.depth, "JSON nesting (the decoder's own "
                             "bound is about 500 levels)", line=line)
    return InputError(source, f"not valid JSON ({msg})", line=line)


def _is_object(data: bytes) -> bool:
    try:
        UNTYPED_DECODER.decode(data)
    except msgspec.DecodeError:
        return False
    return True


def kind_article(kind: str) -> str:
    return {"array": "an array", "int": "a number", "float": "a number", "str": "a string",
            "null": "null", "bool": "a boolean"}.get(kind, kind)


def _resource_at(data: bytes, path: str) -> str | None:
    """Best-effort ``Type/id`` of the resource enclosing a JSON path, for error messages."""
    try:
        obj: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    best = None
    node = obj
    for part in path.lstrip("$").replace("[", ".[").split("."):
        if isinstance(node, dict) and "resourceType" in node:
            best = f"{node.get('resourceType')}/{node.get('id', '?')}"
        if not part:
            continue
        try:
            node = node[int(part[1:-1])] if part.startswith("[") else node[part]
        except (KeyError, IndexError, TypeError, ValueError):
            break
    return best


_KEPT = frozenset(_READ) - {Bundle}  # exact types: structs are never subclassed


class _Budget:
    """Entries left for one input (nested Bundles count in), and the nesting limit."""

    __slots__ = ("depth", "entries", "lim", "line", "source")

    def __init__(self, lim: Limits, source: str, line: int | None) -> None:
        self.lim = lim
        self.entries = lim.bundle_entries
        self.depth = lim.depth
        self.source = source
        self.line = line

    def spend(self, n: int) -> None:
        self.entries -= n
        if self.entries < 0:
            raise LimitExceeded(self.source, "bundle_entries", self.lim.bundle_entries,
                                "number of Bundle entries", line=self.line, field="entry")


def _collect(res: FBase, full_url: str | None, source: str, out: ReadResult,
             line: int | None, budget: _Budget, depth: int) -> None:
    """Keep the resources the rules read (Bundles are flattened); skip the rest."""
    if type(res) is Bundle:
        if depth >= budget.depth:
            raise LimitExceeded(source, "depth", budget.depth, "Bundles nested in Bundles",
                                line=line)
        entries = res.entry or ()
        budget.spend(len(entries))
        kept = out.resources
        for e in entries:
            r: Any = e.resource
            t = type(r)
            if t in _KEPT:
                kept.append((r, e.fullUrl, line))
            elif t is Bundle:
                _collect(r, e.fullUrl, source, out, line, budget, depth + 1)
    elif type(res) in _KEPT:
        out.resources.append((res, full_url, line))


def read_source(src: Any, name: str | None = None, limits: Limits | None = None
                ) -> list[ReadResult]:
    """Any supported source: a path (file or directory), bytes, a parsed resource dict or a
    list of resource dicts."""
    if isinstance(src, str | Path):
        results = []
        for f in iter_files([src]):
            results.append(ReadResult(f.source, error=f) if isinstance(f, InputError)
                           else read_file(f, limits))
        return results
    if isinstance(src, bytes | bytearray | memoryview):
        return [read_bytes(bytes(src), name or "<bytes>", limits=limits)]
    if isinstance(src, dict):
        return [_read_parsed(src, name or "<dict>", limits)]
    if isinstance(src, list | tuple) and all(isinstance(r, dict) for r in src):
        bundle = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": r} for r in src]}
        return [_read_parsed(bundle, name or "<list>", limits)]
    raise TypeError(f"unsupported source type {type(src).__name__}")


def _read_parsed(obj: Any, source: str, limits: Limits | None) -> ReadResult:
    """Parsed JSON (dicts and lists) → the reader; too deep or not serialisable is an input
    error, never an exception (orjson refuses more than 254 levels)."""
    try:
        data = orjson.dumps(obj)
    except (orjson.JSONEncodeError, TypeError, RecursionError) as exc:
        return ReadResult(source, error=InputError(
            source, f"cannot be read as JSON ({str(exc)[:120]})"))
    return read_bytes(data, source, limits=limits)


def read_paths(paths: Iterable[str | Path], limits: Limits | None = None) -> list[ReadResult]:
    out = []
    for f in iter_files(paths):
        out.append(ReadResult(f.source, error=f) if isinstance(f, InputError)
                   else read_file(f, limits))
    return out
