"""Assessments as FHIR R4 DetectedIssue resources, for writing back to an EHR."""

from __future__ import annotations

import hashlib
from typing import Any

from ..model import Assessment, Finding

_SEVERITY = {  # DetectedIssue.severity: high | moderate | low
    "contraindicated": "high",
    "physician-review": "moderate",
    "needs-information": "low",
    "recommendation": "low",
}
RULE_BASE = "https://msc-screen.org/rules/"


def _issue_id(a: Assessment, f: Finding) -> str:
    h = hashlib.sha256(f"{a.patient_id}|{a.as_of}|{f.rule}|{a.ruleset['sha256']}".encode())
    return h.hexdigest()[:32]


def detected_issue(a: Assessment, f: Finding) -> dict[str, Any]:
    implicated = [{"reference": e.reference, **({"display": e.code.display} if e.code and
                                                 e.code.display else {})}
                  for e in f.evidence if "/" in e.reference and not e.reference.startswith("rule/")]
    res: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": _issue_id(a, f),
        "status": "preliminary",
        "code": {
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "DRG" if f.category == "hypersensitivity" else "COND",
                "display": "Drug Allergy Alert" if f.category == "hypersensitivity"
                else "Condition Alert",
            }],
            "text": f.title,
        },
        "severity": _SEVERITY[f.severity],
        "patient": {"reference": f"Patient/{a.patient_id}"},
        "identifiedDateTime": a.as_of.isoformat(),
        "author": {"display": f"msc-screen ruleset {a.ruleset['id']} {a.ruleset['version']}"},
        "detail": f"{f.summary} Severity: {f.severity}. Status: {f.status}.",
        "reference": RULE_BASE + f.rule,
        "extension": [{
            "url": "https://msc-screen.org/fhir/StructureDefinition/msc-screen-finding",
            "extension": [
                {"url": "rule", "valueString": f.rule},
                {"url": "severity", "valueCode": f.severity},
                {"url": "status", "valueCode": f.status},
                {"url": "ruleset-sha256", "valueString": a.ruleset["sha256"]},
                {"url": "policy", "valueString": a.policy["name"]},
            ],
        }],
    }
    if implicated:
        res["implicated"] = implicated
    notes = [e for e in f.evidence if e.source != "fhir"]
    if notes:
        res["evidence"] = [{"detail": [{"display": f"{e.source}: {e.reference}"
                                        + (f" {e.span}" if e.span else "")}]} for e in notes]
    return res


def coverage_outcome(a: Assessment) -> dict[str, Any] | None:
    """What data the screening did not have, as an OperationOutcome (one issue per kind not
    provided or incomplete, and per question not answered); None when it had everything."""
    issues = []
    for kind, cov in a.coverage.items():
        if cov.status == "provided":
            continue
        incomplete = cov.status == "incomplete"
        what = (f"question {kind[len('answer:'):]} not answered" if kind.startswith("answer:")
                else f"{kind}: {'incomplete' if incomplete else 'not provided'}")
        issues.append({
            "severity": "warning" if incomplete else "information",
            "code": "incomplete",
            "details": {"coding": [{"system": COVERAGE_SYSTEM, "code": cov.status}],
                        "text": what + (f" ({cov.reason})" if cov.reason and cov.reason
                                        != "not answered" else "")},
            "expression": [f"coverage.{kind}"],
        })
    if not issues:
        return None
    h = hashlib.sha256(f"{a.patient_id}|{a.as_of}|coverage|{a.ruleset['sha256']}".encode())
    return {"resourceType": "OperationOutcome", "id": h.hexdigest()[:32],
            "extension": [{"url": "https://msc-screen.org/fhir/StructureDefinition/"
                                  "msc-screen-subject",
                           "valueReference": {"reference": f"Patient/{a.patient_id}"}}],
            "issue": issues}


COVERAGE_SYSTEM = "https://msc-screen.org/CodeSystem/data-coverage"


def detected_issue_bundle(assessments: list[Assessment]) -> dict[str, Any]:
    entries = []
    for a in assessments:
        for f in a.findings:
            if f.status == "present" or f.status == "unknown":
                r = detected_issue(a, f)
                entries.append({"fullUrl": f"urn:uuid:{r['id']}", "resource": r})
        outcome = coverage_outcome(a)
        if outcome is not None:
            entries.append({"fullUrl": f"urn:uuid:{outcome['id']}", "resource": outcome})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
