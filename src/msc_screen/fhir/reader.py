"""Turn files, bytes and parsed JSON into FHIR resources, with errors that name the source.

A file is read whole or rejected whole: half a record screened as if complete is the silent
failure this project exists to prevent.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson

from ..errors import InputError
from .structs import _READ, RESOURCE_DECODER, UNTYPED_DECODER, Bundle, FBase

SUFFIXES = (".json", ".ndjson", ".jsonl", ".json.gz", ".ndjson.gz", ".jsonl.gz")
MAX_BYTES = 2 * 1024**3


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


def _maybe_gunzip(data: bytes, source: str) -> bytes:
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(source, f"corrupt gzip data ({exc})") from None
    return data


def slurp(path: str | Path) -> tuple[bytes, os.stat_result]:
    """A whole file and its stat from one descriptor: ``os.read`` of the known size skips the
    buffered layer and its second read (half the cost for the small files of a Bundle
    directory). Raises OSError, or InputError above ``MAX_BYTES``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if st.st_size > MAX_BYTES:
            raise InputError(str(path), f"file is {st.st_size} bytes; split exports above 2 GiB")
        data = os.read(fd, st.st_size + 1)
        if not stat.S_ISREG(st.st_mode) or len(data) > st.st_size:
            # a pipe or device (no size), or a file that grew since fstat: read to the end
            parts = [data]
            while chunk := os.read(fd, 1 << 20):
                parts.append(chunk)
            data = b"".join(parts)
        return data, st
    finally:
        os.close(fd)


def read_file(path: Path) -> ReadResult:
    source = str(path)
    try:
        data, _ = slurp(path)
    except OSError as exc:
        return ReadResult(source, error=InputError(source, f"cannot read ({exc.strerror})"))
    except InputError as exc:
        return ReadResult(source, error=exc)
    return read_bytes(data, source, ndjson=is_ndjson(path.name))


def read_bytes(data: bytes, source: str = "<bytes>", *, ndjson: bool | None = None) -> ReadResult:
    try:
        data = _maybe_gunzip(data, source)
        if not data or data.isspace():
            raise InputError(source, "empty input")
        if ndjson:
            return _read_ndjson(data, source)
        try:
            top = RESOURCE_DECODER.decode(data)
        except msgspec.DecodeError as exc:
            msg = str(exc)
            if ndjson is None and "trailing characters" in msg and data.lstrip()[:1] == b"{":
                return _read_ndjson(data, source)
            if "missing required field `resourceType`" in msg and not _is_object(data):
                raise InputError(source, "top-level JSON value is not an object, expected a "
                                 "FHIR resource or Bundle") from None
            raise _decode_error(exc, data, source, None) from None
        result = ReadResult(source)
        _collect(top, None, source, result, None, "$")
        return result
    except InputError as exc:
        return ReadResult(source, error=exc)
    except RecursionError:
        return ReadResult(source, error=InputError(source, "JSON nested too deeply"))


def _read_ndjson(data: bytes, source: str) -> ReadResult:
    result = ReadResult(source, ndjson=True)
    decoded = 0
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            res = RESOURCE_DECODER.decode(line)
        except msgspec.DecodeError as exc:
            raise _decode_error(exc, line, source, lineno) from None
        decoded += 1
        _collect(res, None, source, result, lineno, "$")
    if not decoded:
        raise InputError(source, "no FHIR resources in NDJSON input")
    return result


def _decode_error(exc: msgspec.DecodeError, data: bytes, source: str,
                  line: int | None) -> InputError:
    msg = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        # "Expected `str | null`, got `int` - at `$.entry[3].resource.onsetDateTime`"
        reason, _, path = msg.partition(" - at ")
        path = path.strip("`")
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
        resource = _resource_at(data, path)
        return InputError(source, f"wrong type: {reason}", line=line, resource=resource,
                          field=path or None)
    if "truncated" in msg:
        return InputError(source, "truncated JSON (input ends early)", line=line)
    if "recursion" in msg.lower() or "depth" in msg.lower():
        return InputError(source, "JSON nested too deeply", line=line)
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


def _collect(res: FBase, full_url: str | None, source: str, out: ReadResult,
             line: int | None, path: str) -> None:
    """Keep the resources the rules read (Bundles are flattened); skip the rest."""
    if type(res) is Bundle:
        kept = out.resources
        for e in res.entry or ():
            r: Any = e.resource
            t = type(r)
            if t in _KEPT:
                kept.append((r, e.fullUrl, line))
            elif t is Bundle:
                _collect(r, e.fullUrl, source, out, line, path)
    elif type(res) in _KEPT:
        out.resources.append((res, full_url, line))


def read_source(src: Any, name: str | None = None) -> list[ReadResult]:
    """Any supported source: a path (file or directory), bytes, a parsed resource dict or a
    list of resource dicts."""
    if isinstance(src, str | Path):
        results = []
        for f in iter_files([src]):
            results.append(ReadResult(f.source, error=f) if isinstance(f, InputError)
                           else read_file(f))
        return results
    if isinstance(src, bytes | bytearray | memoryview):
        return [read_bytes(bytes(src), name or "<bytes>")]
    if isinstance(src, dict):
        return [read_bytes(orjson.dumps(src), name or "<dict>")]
    if isinstance(src, list | tuple) and all(isinstance(r, dict) for r in src):
        bundle = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": r} for r in src]}
        return [read_bytes(orjson.dumps(bundle), name or "<list>")]
    raise TypeError(f"unsupported source type {type(src).__name__}")


def read_paths(paths: Iterable[str | Path]) -> list[ReadResult]:
    out = []
    for f in iter_files(paths):
        out.append(ReadResult(f.source, error=f) if isinstance(f, InputError) else read_file(f))
    return out
