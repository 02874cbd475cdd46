"""What a sign-off rests on, and the standard reasons a physician picks.

A sign-off is for one screening. A re-screen whose decision, findings (status, severity,
evidence), warnings, ruleset and policy are the same as the signed screening's changes nothing
the physician read, so the sign-off carries over; any difference supersedes it (the page says
so and asks for a new one). The fingerprint is stored with each screening.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import msgspec

from ...knowledge.loader import package_root
from ...knowledge.schema import SignOffReason, SignOffReasons
from ...store.clinic_models import Review, StoredAssessment

REASONS_FILE = "signoff-reasons.yaml"


def fingerprint(doc: dict[str, Any], ruleset_sha256: str, policy_sha256: str) -> str:
    """sha256 over what a physician signs: not the screening's date or id."""
    findings = [{k: f.get(k) for k in ("rule", "status", "severity", "evidence")}
                for f in doc.get("findings", [])]
    body = {"decision": doc.get("decision"), "findings": findings,
            "warnings": doc.get("warnings", []), "input_errors": doc.get("input_errors", []),
            "ruleset": ruleset_sha256, "policy": policy_sha256}
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def print_of(a: StoredAssessment) -> str | None:
    return a.findings_sha256


def carries(signed: StoredAssessment, latest: StoredAssessment) -> bool:
    """The sign-off of ``signed`` stands for ``latest``: the same screening, or one whose
    fingerprint is the same (an older screening without one never carries over)."""
    if signed.id == latest.id:
        return True
    return signed.findings_sha256 is not None and signed.findings_sha256 == latest.findings_sha256


def standing(latest: StoredAssessment | None, signoffs: list[Review],
             by_id: dict[int, StoredAssessment]) -> tuple[Review | None, Review | None]:
    """(the sign-off that stands for ``latest``, the newest one it superseded), from the
    patient's sign-offs newest first."""
    if latest is None or not signoffs:
        return None, None
    newest = signoffs[0]
    signed = by_id.get(newest.assessment_id)
    if signed is not None and carries(signed, latest):
        return newest, None
    return None, newest


@lru_cache(maxsize=1)
def reasons() -> tuple[SignOffReason, ...]:
    """The standard reasons (knowledge base data)."""
    raw = (package_root() / REASONS_FILE).read_bytes()
    import yaml

    got = msgspec.convert(yaml.safe_load(raw), SignOffReasons)
    return tuple(got.reasons)


def reason_text(code: str | None) -> str | None:
    return next((r.text for r in reasons() if r.code == code), None) if code else None
