"""Every code in the shared Synthea bundles that bears on a rule is matched by a value set or,
failing that, by the safety net (issue 11). The table of relevant codes
(tests/data/synthea_relevant_codes.tsv) is a clinical judgement of each code, written from the
list of codes the bundles carry; this test checks the engine against it, record by record,
with records shaped as Synthea writes them."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from msc_screen.api import load_records
from msc_screen.engine import evaluate
from msc_screen.engine.safety_net import safety_net
from msc_screen.knowledge import get_ruleset
from msc_screen.model import Coding
from msc_screen.terminology.systems import canonical_uri, system_key

TABLE = Path(__file__).resolve().parents[1] / "data" / "synthea_relevant_codes.tsv"
SYNTHEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea-r4"
AS_OF = dt.date(2019, 6, 30)
RECENT = (AS_OF - dt.timedelta(days=10)).isoformat()
KINDS = {"Condition": "condition", "Observation": "observation", "Procedure": "procedure",
         "AllergyIntolerance": "allergy", "MedicationRequest": "medication"}


def _rows() -> list[dict[str, str]]:
    with TABLE.open() as f:
        return list(csv.DictReader((line for line in f if not line.startswith("#")),
                                   delimiter="\t"))


ROWS = _rows()
PRESENT = [r for r in ROWS if r["role"] == "present"]
ENDS = [r for r in ROWS if r["role"] == "ends"]


def _cc(row: dict[str, str]) -> dict[str, Any]:
    return {"coding": [{"system": canonical_uri(row["system"]), "code": row["code"],
                        "display": row["display"]}], "text": row["display"]}


def _resource(row: dict[str, str], rid: str, when: str = RECENT) -> dict[str, Any]:
    """The record as Synthea writes it: active, recent, with its display as the text."""
    subj = {"reference": "Patient/p"}
    kind = row["kind"]
    if kind == "condition":
        return {"resourceType": "Condition", "id": rid, "subject": subj, "code": _cc(row),
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "verificationStatus": {"coding": [{"code": "confirmed"}]},
                "onsetDateTime": when, "recordedDate": when}
    if kind == "medication":
        return {"resourceType": "MedicationRequest", "id": rid, "subject": subj,
                "status": "active", "intent": "order", "authoredOn": when,
                "medicationCodeableConcept": _cc(row)}
    if kind == "procedure":
        return {"resourceType": "Procedure", "id": rid, "subject": subj, "status": "completed",
                "code": _cc(row), "performedPeriod": {"start": when, "end": when}}
    if kind == "allergy":
        return {"resourceType": "AllergyIntolerance", "id": rid, "patient": subj,
                "code": _cc(row), "clinicalStatus": {"coding": [{"code": "active"}]},
                "verificationStatus": {"coding": [{"code": "confirmed"}]},
                "recordedDate": when}
    obs: dict[str, Any] = {"resourceType": "Observation", "id": rid, "subject": subj,
                           "status": "final", "code": _cc(row), "effectiveDateTime": when}
    if row["code"] == "55277-8":
        obs["valueString"] = "HIV positive"
    else:  # a result above its reference range
        obs["valueQuantity"] = {"value": 40.0, "unit": "ng/mL"}
        obs["referenceRange"] = [{"high": {"value": 4.0, "unit": "ng/mL"}}]
    return obs


def _screen(*resources: dict[str, Any]) -> Any:
    pat = {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1975-05-01"}
    records, errors = load_records([pat, *resources])
    assert not errors, errors
    return evaluate(records[0], get_ruleset(), AS_OF, None)


@pytest.mark.parametrize("row", PRESENT, ids=[f"{r['code']}-{r['rule']}" for r in PRESENT])
def test_relevant_code_makes_its_rule_present(row: dict[str, str]) -> None:
    a = _screen(_resource(row, "r1"))
    f = next(f for f in a.findings if f.rule == row["rule"])
    assert f.status == "present", (row["display"], f.summary)
    assert any(e.reference.endswith("/r1") for e in f.evidence)


@pytest.mark.parametrize("row", ENDS, ids=[r["code"] for r in ENDS])
def test_relevant_code_ends_a_pregnancy(row: dict[str, str]) -> None:
    preg = {"kind": "condition", "system": "snomed", "code": "72892002",
            "display": "Normal pregnancy"}
    start = (AS_OF - dt.timedelta(days=120)).isoformat()
    ongoing = _screen(_resource(preg, "p1", start))
    assert next(f for f in ongoing.findings if f.rule == row["rule"]).status == "present"
    ended = _screen(_resource(preg, "p1", start), _resource(row, "e1"))
    assert next(f for f in ended.findings if f.rule == row["rule"]).status == "absent"


def _synthea_codes() -> dict[tuple[str, str, str], str]:
    """(kind, system key, code) -> display of every coded record in the shared bundles."""
    out: dict[tuple[str, str, str], str] = {}
    for p in sorted(SYNTHEA.glob("*.json*")):
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        for e in orjson.loads(raw).get("entry", []):
            r = e["resource"]
            kind = KINDS.get(r["resourceType"])
            if kind is None:
                continue
            cc = r.get("medicationCodeableConcept") if kind == "medication" else r.get("code")
            for c in (cc or {}).get("coding", []):
                out.setdefault((kind, system_key(c.get("system")) or "", c["code"]),
                               c.get("display") or "")
    return out


@pytest.mark.slow
@pytest.mark.skipif(not SYNTHEA.is_dir(), reason=f"shared Synthea bundles not at {SYNTHEA}")
def test_every_relevant_synthea_code_is_matched_or_caught() -> None:
    codes = _synthea_codes()
    net = safety_net(get_ruleset())
    unflagged = []
    for row in ROWS:
        key = (row["kind"], row["system"], row["code"])
        assert key in codes, f"{key} is not in the Synthea bundles: the table is stale"
        what, _rules = net.classify(row["kind"], (Coding(row["system"], row["code"],
                                                        codes[key]),), codes[key])
        if what not in ("value-set", "safety-net"):
            unflagged.append((key, what))
    assert unflagged == []
