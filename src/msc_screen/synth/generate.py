"""Synthetic populations: realistic background records plus planted rule triggers, labelled.

Each patient draws from its own ``random.Random(f"{seed}:{index}")`` so output is identical for a
seed whatever the order of writing, and one patient never shifts another's draws.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from ..knowledge import get_ruleset
from .plant import NO_KNOWN_ALLERGY, Code, Planter, Resource

PREVALENCE_FILE = Path(__file__).with_name("prevalence.yaml")
GIVEN_F = ["Ana", "Maria", "Olivia", "Grace", "Amira", "Chloe", "Ines", "Yuki", "Zofia", "Lena"]
GIVEN_M = ["Ben", "Omar", "Luis", "Noah", "Kenji", "Tomasz", "David", "Ravi", "Jonas", "Ade"]
FAMILY = ["Okafor", "Silva", "Novak", "Haddad", "Kim", "Murphy", "Rossi", "Lindqvist", "Mensah",
          "Tanaka", "Garcia", "Dubois"]
NOTES = [
    "Routine follow-up visit. Blood pressure reviewed; continue current medication. "
    "Patient reports feeling well and exercising twice a week.",
    "Annual wellness visit. Discussed diet and sleep. Vaccinations up to date. "
    "Plan: recheck lipids in twelve months.",
    "Telephone consultation about knee pain after gardening. Advised rest, ice and "
    "paracetamol as needed; physiotherapy referral offered.",
]


@dataclass
class SynthConfig:
    patients: int
    out: Path
    format: str = "bundles"  # bundles | ndjson
    seed: int = 1
    as_of: dt.date = field(default_factory=dt.date.today)
    policy: str | None = None
    gzip: bool = False


def load_prevalence(path: Path | None = None) -> dict[str, Any]:
    """The default prevalence file, overlaid with ``path`` (same shape) when given."""
    data = yaml.safe_load(PREVALENCE_FILE.read_text(encoding="utf-8"))
    rules: dict[str, float] = dict(data.get("rules") or {})
    out: dict[str, Any] = {"default": float(data.get("default", 0.03)), "rules": rules}
    if path is not None:
        extra = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(extra, dict):
            raise ValueError(f"{path}: expected a mapping of rule id to prevalence")
        if "default" in extra:
            out["default"] = float(extra["default"])
        rules = extra.get("rules", {k: v for k, v in extra.items() if k != "default"})
        for k, v in (rules or {}).items():
            val = float(v)
            if not 0.0 <= val <= 1.0:
                raise ValueError(f"{path}: prevalence of {k!r} must be between 0 and 1")
            rules[str(k)] = val
    return out


class PatientFactory:
    """Builds one synthetic patient (list of resources) plus the rules planted in it."""

    def __init__(self, seed: int, as_of: dt.date, prevalence: dict[str, Any],
                 policy: str | None = None) -> None:
        self.seed = seed
        self.as_of = as_of
        self.planter = Planter(get_ruleset(policy))
        default = float(prevalence.get("default", 0.03))
        rules = prevalence.get("rules", {})
        self.prevalence = {rid: float(rules.get(rid, default)) for rid in self.planter.rules}

    def make(self, index: int) -> tuple[str, list[Resource], list[tuple[str, str]]]:
        rng = random.Random(f"{self.seed}:{index}")
        counter = iter(range(1, 10_000))

        def new_id() -> str:
            return f"s{self.seed}-{index:07d}-{next(counter)}"

        pid = f"synth-{self.seed}-{index:07d}"
        sex = rng.choice(("female", "male"))
        age = int(min(95, max(18, rng.gauss(52, 17))))
        birth = self.as_of - dt.timedelta(days=age * 365 + rng.randint(1, 360))
        patient: Resource = {
            "resourceType": "Patient", "id": pid, "gender": sex, "birthDate": birth.isoformat(),
            "name": [{"family": rng.choice(FAMILY),
                      "given": [rng.choice(GIVEN_F if sex == "female" else GIVEN_M)]}],
            "identifier": [{"system": "urn:msc-screen:synthetic", "value": pid}],
        }
        resources = [patient, *self._background(rng, pid, birth, new_id)]
        planted: list[tuple[str, str]] = []
        pl = self.planter
        absences: list[str] = []
        codes: set[tuple[str, str]] = set()
        for rid, p in self.prevalence.items():
            draw = rng.random()
            if rid in pl.absent_recipes:
                # present/unknown by default: plant the data that rules it out in (1 - p)
                if draw >= p and pl.applicable(rid, sex, age, absent=True):
                    absences.append(rid)
            elif p > 0 and draw < p and pl.applicable(rid, sex, age):
                trigger = pl.plant(rid, rng, pid, self.as_of, new_id)
                resources.extend(trigger)
                codes.update(pl.codes_of(trigger))
                planted.append((rid, "present"))
        for rid in absences:
            if pl.has_absent_data(rid, codes):
                continue  # a planted trigger already holds the data (e.g. a marker result)
            resources.extend(pl.plant(rid, rng, pid, self.as_of, new_id, absent=True))
            planted.append((rid, "absent"))
        return pid, resources, planted

    def _background(self, rng: random.Random, pid: str, birth: dt.date,
                    new_id: Callable[[], str]) -> Iterator[Resource]:
        pl = self.planter
        subject = {"reference": f"Patient/{pid}"}
        span = max(30, (self.as_of - birth).days - 18 * 365)

        def past(max_days: int = 3000) -> dt.date:
            return self.as_of - dt.timedelta(days=rng.randint(1, min(span, max_days)))

        for _ in range(rng.randint(2, 6)):
            start = past()
            yield {"resourceType": "Encounter", "id": new_id(), "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                             "code": "AMB"},
                   "type": [{"coding": [{"system": "http://snomed.info/sct",
                                         "code": "185349003",
                                         "display": "Encounter for check up"}]}],
                   "subject": subject,
                   "period": {"start": f"{start.isoformat()}T09:00:00Z",
                              "end": f"{start.isoformat()}T09:30:00Z"}}
        # a problem list with at least one entry: a chart with none would, rightly, leave most
        # rules unknown (no conditions provided)
        for code in rng.sample(pl.bg_conditions, k=min(len(pl.bg_conditions), rng.randint(1, 3))):
            onset = past()
            res: Resource = {"resourceType": "Condition", "id": new_id(),
                             "clinicalStatus": {"coding": [{
                                 "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                 "code": "active"}]},
                             "code": code.concept(), "subject": subject,
                             "onsetDateTime": onset.isoformat()}
            if rng.random() < 0.2:
                res["clinicalStatus"]["coding"][0]["code"] = "resolved"
                res["abatementDateTime"] = min(self.as_of, onset + dt.timedelta(
                    days=rng.randint(10, 400))).isoformat()
            yield res
        for loinc, display, unit, lo, hi in rng.sample(pl.bg_labs, k=min(len(pl.bg_labs), 3)):
            value = round(rng.uniform(lo, hi), 1)
            yield {"resourceType": "Observation", "id": new_id(), "status": "final",
                   "category": [{"coding": [{
                       "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                       "code": "laboratory"}]}],
                   "code": Code("loinc", loinc, display).concept(), "subject": subject,
                   "effectiveDateTime": past(400).isoformat(),
                   "valueQuantity": {"value": value, "unit": unit,
                                     "system": "http://unitsofmeasure.org", "code": unit},
                   "referenceRange": [{"low": {"value": lo, "unit": unit},
                                       "high": {"value": hi, "unit": unit}}]}
        for med in rng.sample(pl.bg_meds, k=min(len(pl.bg_meds), rng.randint(0, 2))):
            yield {"resourceType": "MedicationRequest", "id": new_id(),
                   "status": rng.choice(("active", "completed")), "intent": "order",
                   "medicationCodeableConcept": med.concept(), "subject": subject,
                   "authoredOn": past(700).isoformat()}
        if pl.bg_procedures and rng.random() < 0.5:
            yield {"resourceType": "Procedure", "id": new_id(), "status": "completed",
                   "code": rng.choice(pl.bg_procedures).concept(), "subject": subject,
                   "performedDateTime": past().isoformat()}
        allergy = rng.choice(pl.bg_allergies) if pl.bg_allergies and rng.random() < 0.15 else (
            NO_KNOWN_ALLERGY)  # a chart records the allergy status either way
        yield {"resourceType": "AllergyIntolerance", "id": new_id(),
               "clinicalStatus": {"coding": [{
                   "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                   "code": "active"}]},
               "code": allergy.concept(), "patient": subject,
               "recordedDate": past().isoformat()}
        if rng.random() < 0.1:
            text = rng.choice(NOTES).encode()
            yield {"resourceType": "DocumentReference", "id": new_id(), "status": "current",
                   "subject": subject, "date": f"{past(365).isoformat()}T10:00:00Z",
                   "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3",
                                        "display": "Progress note"}]},
                   "content": [{"attachment": {"contentType": "text/plain",
                                               "data": base64.b64encode(text).decode()}}]}


def _bundle(resources: list[Resource]) -> bytes:
    return orjson.dumps({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    })


def generate(cfg: SynthConfig, prevalence: dict[str, Any] | None = None,
             progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write ``cfg.patients`` patients under ``cfg.out`` plus ``labels.csv``; returns counts of
    planted triggers by rule."""
    import gzip

    cfg.out.mkdir(parents=True, exist_ok=True)
    factory = PatientFactory(cfg.seed, cfg.as_of, prevalence or load_prevalence(), cfg.policy)
    counts: dict[str, int] = dict.fromkeys(factory.planter.rules, 0)
    streams: dict[str, Any] = {}
    ext = ".gz" if cfg.gzip else ""
    with (cfg.out / "labels.csv").open("w", newline="", encoding="utf-8") as lf:
        labels = csv.writer(lf)
        labels.writerow(["patient_id", "rule", "planted_status"])
        with ExitStack() as stack:
            for i in range(cfg.patients):
                pid, resources, planted = factory.make(i)
                for rid, status in planted:
                    labels.writerow([pid, rid, status])
                    if status == "present":
                        counts[rid] += 1
                if cfg.format == "ndjson":
                    for r in resources:
                        rtype = r["resourceType"]
                        f = streams.get(rtype)
                        if f is None:
                            path = cfg.out / f"{rtype}.ndjson{ext}"
                            f = streams[rtype] = stack.enter_context(
                                gzip.open(path, "wb", compresslevel=3) if cfg.gzip  # noqa: SIM115
                                else path.open("wb"))
                        f.write(orjson.dumps(r) + b"\n")
                else:
                    data = _bundle(resources)
                    path = cfg.out / f"{pid}.json{ext}"
                    path.write_bytes(gzip.compress(data, 3) if cfg.gzip else data)
                if progress is not None:
                    progress(1)
    return counts
