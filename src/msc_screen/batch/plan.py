"""The plan of a batch run: which files, which work units, and the manifest that makes a killed
run resumable.

Work units are fixed by the inputs alone (never by ``--workers``), so output order and content
do not depend on parallelism. Everything under ``OUT/.work`` is written to a temporary name and
renamed into place, so a file there is either complete or absent.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError
from ..fhir.reader import is_ndjson, iter_paths

MANIFEST_VERSION = 5  # 4: the medications spill tags each line with the Medication's id;
# 5: summary rows end with coverage_gaps, units count coverage patterns, args hold --complete
# Bundle files per work unit: enough units to balance many workers (TARGET_UNITS), each big
# enough that its fixed cost (task dispatch, unit file, assembly) is small per patient, and
# small enough that a kill loses little work.
TARGET_UNITS = 64
MIN_BUNDLES_PER_UNIT = 16
MAX_BUNDLES_PER_UNIT = 128  # 64 cost ~9% more CPU at 20k (per-unit commit, syscalls)
PARTITION_BYTES = 16 * 1024**2  # raw NDJSON bytes per partition (memory per work unit)
MAX_PARTITIONS = 512  # open spill files at once (stay under the usual fd limit)
IOV_MAX = 1024  # buffers per writev (the Linux limit)


def bundles_per_unit(files: int) -> int:
    return max(MIN_BUNDLES_PER_UNIT, min(MAX_BUNDLES_PER_UNIT, -(-files // TARGET_UNITS)))


@dataclass
class Unit:
    id: str
    kind: str  # "bundles" | "partition"
    paths: list[str] = field(default_factory=list)  # bundle files of this unit
    partition: int = -1


@dataclass
class Manifest:
    version: int
    args: dict[str, Any]
    fingerprint: list[list[Any]]
    bundle_units: list[list[str]]
    ndjson_files: list[str]
    partitions: int
    scan_errors: list[dict[str, Any]]
    partitioned: bool = False
    partition_errors: list[dict[str, Any]] = field(default_factory=list)
    damaged_sources: list[str] = field(default_factory=list)
    partition_patients: list[int] = field(default_factory=list)

    def units(self) -> list[Unit]:
        out = [Unit(f"b{i:06d}", "bundles", paths=p) for i, p in enumerate(self.bundle_units)]
        if self.ndjson_files:
            out.extend(Unit(f"p{i:06d}", "partition", partition=i)
                       for i in range(self.partitions))
        return out


class WorkDir:
    """Layout of ``OUT/.work``."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.root = out / ".work"
        self.manifest = self.root / "manifest.json"
        self.parts = self.root / "parts"
        self.units = self.root / "units"

    def unit_file(self, unit_id: str) -> Path:
        return self.units / f"{unit_id}.unit"

    def part_file(self, index: int) -> Path:
        return self.parts / f"{index:06d}.spill"

    def reset(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.units.mkdir(parents=True)

    def write_manifest(self, m: Manifest) -> None:
        atomic_write(self.manifest, orjson.dumps(m), durable=True)

    def read_manifest(self) -> Manifest | None:
        try:
            data = orjson.loads(self.manifest.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if data.get("version") != MANIFEST_VERSION:
            return None
        return Manifest(**data)


def write_chunks(fd: int, chunks: list[bytes]) -> int:
    """Write every chunk at the fd's position with ``writev`` (no joined copy); the bytes
    written."""
    total = 0
    for i in range(0, len(chunks), IOV_MAX):
        group = chunks[i:i + IOV_MAX]
        size = sum(map(len, group))
        n = os.writev(fd, group)
        if n < size:  # a short write: finish this group plainly
            rest = memoryview(b"".join(group))[n:]
            while rest:
                rest = rest[os.write(fd, rest):]
        total += size
    return total


def atomic_write(path: Path, data: bytes | list[bytes], durable: bool = False) -> None:
    """Write then rename, so readers see the old file or the whole new one. A killed process
    cannot leave a partial file; ``durable`` adds an fsync for power loss too (slow on shared
    disks, so only the manifest asks for it). ``data`` may be a list of chunks (written with
    ``writev``, not joined first)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_chunks(fd, [data] if isinstance(data, bytes) else data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def make_plan(inputs: list[str], args: dict[str, Any]) -> Manifest:
    """The files and units of a run. Only NDJSON files are stat-ed here (their sizes set the
    partitions); a Bundle file's size and mtime are recorded by the worker that reads it, in
    its unit file, and checked on ``--resume`` (``runner.check_units``): one stat per file
    fewer on the serial path."""
    bundles: list[str] = []
    ndjson: list[str] = []
    fingerprint: list[list[Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    nd_bytes = 0
    for raw in inputs:
        for path in iter_paths([raw]):
            if isinstance(path, InputError):
                errors.append(path.to_dict())
                continue
            if path in seen:
                continue
            seen.add(path)
            if is_ndjson(path):
                try:
                    st = os.stat(path)
                except OSError as exc:
                    errors.append(InputError(path, f"cannot read ({exc.strerror})").to_dict())
                    continue
                nd_bytes += st.st_size
                fingerprint.append([path, st.st_size, st.st_mtime_ns])
                ndjson.append(path)
            else:
                bundles.append(path)  # compared on --resume through ``bundle_units``
    partitions = min(MAX_PARTITIONS, max(1, -(-nd_bytes // PARTITION_BYTES))) if ndjson else 0
    per = bundles_per_unit(len(bundles))
    units = [bundles[i:i + per] for i in range(0, len(bundles), per)]
    return Manifest(MANIFEST_VERSION, args, fingerprint, units, ndjson, partitions, errors)
