"""The plan of a batch run: which files, which work units, and the manifest that makes a killed
run resumable.

Work units are fixed by the inputs alone (never by ``--workers``), so output order and content
do not depend on parallelism. Everything under ``OUT/.work`` is written to a temporary name and
renamed into place, so a file there is either complete or absent.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError
from ..fhir.reader import iter_files

MANIFEST_VERSION = 1
BUNDLES_PER_UNIT = 40
PARTITION_BYTES = 16 * 1024**2  # raw NDJSON bytes per partition (memory per work unit)
MAX_PARTITIONS = 512  # open spill files at once (stay under the usual fd limit)


def is_ndjson(path: str) -> bool:
    return path.lower().removesuffix(".gz").endswith((".ndjson", ".jsonl"))


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
        atomic_write(self.manifest, orjson.dumps(asdict(m), option=orjson.OPT_INDENT_2),
                     durable=True)

    def read_manifest(self) -> Manifest | None:
        try:
            data = orjson.loads(self.manifest.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if data.get("version") != MANIFEST_VERSION:
            return None
        return Manifest(**data)


def atomic_write(path: Path, data: bytes, durable: bool = False) -> None:
    """Write then rename, so readers see the old file or the whole new one. A killed process
    cannot leave a partial file; ``durable`` adds an fsync for power loss too (slow on shared
    disks, so only the manifest asks for it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def make_plan(inputs: list[str], args: dict[str, Any]) -> Manifest:
    bundles: list[str] = []
    ndjson: list[str] = []
    fingerprint: list[list[Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in iter_files(inputs):
        if isinstance(item, InputError):
            errors.append(item.to_dict())
            continue
        path = str(item)
        if path in seen:
            continue
        seen.add(path)
        try:
            st = item.stat()
        except OSError as exc:
            errors.append(InputError(path, f"cannot read ({exc.strerror})").to_dict())
            continue
        fingerprint.append([path, st.st_size, st.st_mtime_ns])
        (ndjson if is_ndjson(path) else bundles).append(path)
    nd_bytes = sum(f[1] for f in fingerprint if is_ndjson(f[0]))
    partitions = min(MAX_PARTITIONS, max(1, -(-nd_bytes // PARTITION_BYTES))) if ndjson else 0
    units = [bundles[i:i + BUNDLES_PER_UNIT] for i in range(0, len(bundles), BUNDLES_PER_UNIT)]
    return Manifest(MANIFEST_VERSION, args, fingerprint, units, ndjson, partitions, errors)
