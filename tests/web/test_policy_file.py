"""Pages built from a stored screening must not need its policy again: a policy given as a YAML
file (``serve --policy site.yaml``) is stored by name and cannot be loaded by that name."""

from __future__ import annotations

from pathlib import Path

import pytest

from msc_screen import screen
from msc_screen.errors import PolicyError
from msc_screen.knowledge import get_ruleset
from msc_screen.server.web.pages_clinic import _findings
from msc_screen.server.web.pages_patient import patient_result
from msc_screen.store.clinic_models import StoredAssessment

PREGNANT = [
    {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1990-01-01"},
    {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p"},
     "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2026-09-01",
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "77386006"}]}},
]


def test_pages_of_a_screening_under_a_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "site.yaml"
    policy.write_text("name: site-x\ntitle: Site X\ndescription: A site's own policy.\n",
                      encoding="utf-8")
    a = screen(PREGNANT, as_of="2026-11-24", policy=str(policy))
    assert a.policy["name"] == "site-x"
    with pytest.raises(PolicyError):
        get_ruleset("site-x")  # what the pages used to do
    stored = StoredAssessment(decision=a.decision, as_of="2026-11-24", ruleset_sha256="x",
                              policy_name="site-x", policy_sha256="y", trigger="test",
                              document=a.to_dict())
    findings = _findings(stored)
    pregnancy = next(f for f in findings if f["rule"] == "pregnancy")
    assert pregnancy["status"] == "present" and pregnancy["rationale"]
    told = patient_result(stored)
    assert [d["title"] for d in told["discuss"]] == ["Pregnancy"]
    assert told["discuss"][0]["text"]
