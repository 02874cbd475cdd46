"""Append-only audit log, hash-chained so that any edited, removed or reordered row is found.

Each row stores the previous row's hash and its own hash: SHA-256 over the canonical JSON
(sorted keys, no spaces) of ``seq, ts, actor, action, target, details, prev_hash``. Appends
first bump the single ``audit_head`` row (``UPDATE ... RETURNING``), which row-locks on
PostgreSQL and takes the write lock on SQLite, so concurrent writers cannot fork the chain.
Details hold identifiers and outcomes only, never answers or clinical text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .clinic_models import AuditEntry, AuditHead

GENESIS = "0" * 64


def canonical(row: Mapping[str, Any]) -> bytes:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def row_hash(seq: int, ts: str, actor: str, action: str, target: str | None,
             details: Mapping[str, Any], prev_hash: str) -> str:
    body = {"seq": seq, "ts": ts, "actor": actor, "action": action, "target": target,
            "details": dict(details), "prev_hash": prev_hash}
    return hashlib.sha256(canonical(body)).hexdigest()


def append(session: Session, actor: str, action: str, target: str | None = None,
           details: Mapping[str, Any] | None = None, now: dt.datetime | None = None
           ) -> AuditEntry:
    """Add one entry in the caller's transaction (it commits with the change it records)."""
    got = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)).first()
    if got is None:
        session.add(AuditHead(id=1, seq=1, last_hash=GENESIS))
        session.flush()
        seq, prev = 1, GENESIS
    else:
        seq, prev = int(got[0]), str(got[1])
    ts = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="microseconds")
    det = json.loads(canonical(details or {}))
    h = row_hash(seq, ts, actor, action, target, det, prev)
    entry = AuditEntry(seq=seq, ts=ts, actor=actor, action=action, target=target,
                       details=det, prev_hash=prev, hash=h)
    session.add(entry)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=h))
    session.flush()
    return entry


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    first_bad: int | None = None
    reason: str | None = None


def verify(session: Session, batch: int = 1000) -> VerifyResult:
    """Walk the chain in order; report the first row whose link or hash does not hold."""
    prev = GENESIS
    expect = 1
    count = 0
    last_seq = 0
    while True:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.seq > last_seq)
                               .order_by(AuditEntry.seq).limit(batch)).all()
        if not rows:
            break
        for r in rows:
            if r.seq != expect:
                return VerifyResult(False, count, expect, f"row {expect} is missing")
            if r.prev_hash != prev:
                return VerifyResult(False, count, r.seq,
                                    "previous-hash link does not match the row before")
            if row_hash(r.seq, r.ts, r.actor, r.action, r.target, r.details or {},
                        r.prev_hash) != r.hash:
                return VerifyResult(False, count, r.seq, "row content does not match its hash")
            prev = r.hash
            expect += 1
            count += 1
            last_seq = r.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != count or head.last_hash != prev):
        return VerifyResult(False, count, count + 1,
                            f"chain ends at row {count} but the head records row {head.seq}")
    return VerifyResult(True, count)
