"""Group a FHIR Bulk Data export by patient with bounded memory.

Lines stream from each NDJSON file (gzip or not) into one of P spill files chosen by a stable
hash of the patient id, so each spill holds every resource of its patients and fits in memory.
Only the resource's head (type, id, subject) is decoded here; the full decode happens in the
work unit. Medications (shared, not patient-bound) go to their own spill for every unit.
"""

from __future__ import annotations

import gzip
import shutil
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

import msgspec
import orjson

from ..errors import InputError
from ..fhir.record import patient_id_of
from ..fhir.structs import READ_TYPES
from .plan import Manifest, WorkDir

MEDICATIONS = "medications.spill"


class _Ref(msgspec.Struct):
    reference: str | None = None


class _Head(msgspec.Struct):
    resourceType: str | None = None
    id: str | None = None
    subject: _Ref | None = None
    patient: _Ref | None = None


_HEAD = msgspec.json.Decoder(_Head)


def bucket(pid: str, partitions: int) -> int:
    return zlib.crc32(pid.encode()) % partitions


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    opener: Callable[[], IO[bytes]]
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    if gz:
        def opener() -> IO[bytes]:
            return gzip.open(path, "rb")  # type: ignore[return-value]
    else:
        def opener() -> IO[bytes]:
            return open(path, "rb")
    with opener() as f:
        yield from enumerate(f, start=1)


def partition(manifest: Manifest, work: WorkDir, on_line: Callable[[], None] | None = None
              ) -> None:
    """Spill every NDJSON file into ``work.parts``; record errors in the manifest."""
    tmp = work.parts.with_name("parts.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(work.parts, ignore_errors=True)
    tmp.mkdir(parents=True)
    p = manifest.partitions
    outs = [(tmp / work.part_file(i).name).open("wb", buffering=1 << 16) for i in range(p)]
    meds = (tmp / MEDICATIONS).open("wb")
    errors: list[dict[str, Any]] = []
    damaged: list[str] = []
    counts = [0] * p
    try:
        for src_idx, path in enumerate(manifest.ndjson_files):
            bad_lines = 0
            found = 0
            try:
                for lineno, line in _lines(path):
                    if on_line is not None:
                        on_line()
                    raw = line.strip()
                    if not raw:
                        continue
                    try:
                        head = _HEAD.decode(raw)
                    except msgspec.DecodeError as exc:
                        bad_lines += 1
                        errors.append(InputError(path, f"not a FHIR resource ({exc})",
                                                 line=lineno).to_dict())
                        continue
                    rtype = head.resourceType
                    if not rtype:
                        bad_lines += 1
                        errors.append(InputError(path, "JSON object without resourceType",
                                                 line=lineno, field="resourceType").to_dict())
                        continue
                    found += 1
                    if rtype == "Medication":  # shared: every unit reads them by id
                        meds.write(orjson.dumps([src_idx, lineno, head.id]) + b"\t" + raw
                                   + b"\n")
                        continue
                    if rtype == "Patient":
                        pid = head.id
                    elif rtype in READ_TYPES:
                        ref = head.subject or head.patient
                        pid = patient_id_of(ref.reference) if ref and ref.reference else None
                    else:
                        continue  # Encounter, Practitioner, ...: nothing the rules read
                    if not pid:
                        bad_lines += 1
                        errors.append(InputError(
                            path, "no Patient id or patient reference", line=lineno,
                            resource=f"{rtype}/{head.id or '?'}",
                            field="id" if rtype == "Patient" else "subject").to_dict())
                        continue
                    b = bucket(pid, p)
                    outs[b].write(orjson.dumps([src_idx, lineno, pid]) + b"\t" + raw + b"\n")
                    if rtype == "Patient":
                        counts[b] += 1
            except (OSError, EOFError, zlib.error) as exc:
                bad_lines += 1
                errors.append(InputError(path, f"cannot read to the end ({exc})").to_dict())
            if found == 0 and bad_lines == 0:
                errors.append(InputError(path, "no FHIR resources in NDJSON input").to_dict())
            if bad_lines:
                damaged.append(path)
    finally:
        for f in (*outs, meds):
            f.close()
    tmp.rename(work.parts)
    manifest.partitioned = True
    manifest.partition_errors = errors
    manifest.damaged_sources = damaged
    manifest.partition_patients = counts
    work.write_manifest(manifest)
