"""Plant a rule's trigger into a synthetic patient, using the rule's own criteria and value sets.

The generator never holds a second copy of the rules: for each rule it reads the compiled
criteria (kind, value sets, windows, value tests) and writes FHIR resources that satisfy one of
them, so synthetic populations follow the knowledge base as it changes.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from ..knowledge.compiled import CompiledCriterion, CompiledRule, CompiledRuleset
from ..terminology.systems import ICD10, ICD10CM, canonical_uri, system_key
from ..terminology.valueset import CompiledValueSet

Resource = dict[str, Any]
PLANTABLE = ("condition", "observation", "medication", "procedure", "allergy", "questionnaire")

# Everyday background (hypertension, statins, routine labs...). Any entry that falls in one of
# the knowledge base's value sets is dropped at start-up, so background never triggers a rule.
BACKGROUND_CONDITIONS = [
    ("snomed", "38341003", "Hypertension"),
    ("snomed", "55822004", "Hyperlipidemia"),
    ("snomed", "15777000", "Prediabetes"),
    ("snomed", "239873007", "Osteoarthritis of knee"),
    ("snomed", "162864005", "Body mass index 30+ - obesity"),
    ("snomed", "40055000", "Chronic sinusitis"),
    ("snomed", "195967001", "Asthma"),
    ("icd10cm", "E78.5", "Hyperlipidemia, unspecified"),
    ("icd10cm", "M54.5", "Low back pain"),
    ("icd10cm", "K21.9", "Gastro-esophageal reflux disease without esophagitis"),
]
# (LOINC, display, unit, low, high)
BACKGROUND_LABS = [
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70.0, 99.0),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 120.0, 200.0),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.0, 11.0),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150.0, 400.0),
]
BACKGROUND_MEDS = [
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("617312", "atorvastatin 20 MG Oral Tablet"),
    ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"),
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("310798", "hydrochlorothiazide 25 MG Oral Tablet"),
]
BACKGROUND_PROCEDURES = [
    ("snomed", "73761001", "Colonoscopy"),
    ("snomed", "171207006", "Depression screening"),
    ("snomed", "430193006", "Medication reconciliation"),
    ("snomed", "268556000", "Urine screening for glucose"),
]
BACKGROUND_ALLERGIES = [
    ("snomed", "91935009", "Allergy to peanuts"),
    ("snomed", "300916003", "Latex allergy"),
    ("snomed", "419474003", "Allergy to mould"),
    ("snomed", "232347008", "Dander (animal) allergy"),
]


@dataclass(frozen=True)
class Code:
    system: str  # short key
    code: str
    display: str

    def coding(self) -> dict[str, str]:
        return {"system": canonical_uri(self.system), "code": self.code, "display": self.display}

    def concept(self) -> dict[str, Any]:
        return {"coding": [self.coding()], "text": self.display}


# how a chart records that the patient has no known allergy (an AllergyIntolerance of its own)
NO_KNOWN_ALLERGY = Code("snomed", "716186003", "No known allergy")


def _icd_display(code: str, fallback: str) -> str:
    try:
        import simple_icd_10_cm as icd

        if icd.is_valid_item(code):
            return str(icd.get_description(code))
    except Exception:  # the table is optional for display only
        return fallback
    return fallback


class Planter:
    """Per-ruleset knowledge of which codes and values satisfy each rule's criteria."""

    def __init__(self, ruleset: CompiledRuleset) -> None:
        self.ruleset = ruleset
        self.rules: dict[str, CompiledRule] = {r.id: r for r in ruleset.rules}
        self._codes: dict[str, list[Code]] = {}
        self.recipes: dict[str, list[CompiledCriterion]] = {}
        # rules that are present/unknown unless data shows otherwise ("otherwise:"): the
        # criteria that make them absent, planted to model a population that has the data
        self.absent_recipes: dict[str, list[CompiledCriterion]] = {}
        self.upper_limits: dict[str, float] = {}
        all_sets: list[CompiledValueSet] = []
        for r in ruleset.rules:
            for c in (*r.present_if, *r.unknown_if, *r.absent_if):
                all_sets.extend((*c.valuesets, *c.ended_by))
                if c.positive is not None:
                    all_sets.append(c.positive)
            for c in r.present_if:
                for code, limit in c.default_upper_limits.items():
                    self.upper_limits[code] = min(limit, self.upper_limits.get(code, limit))
            self.recipes[r.id] = self._usable(r.present_if)
            if r.otherwise != "absent":
                self.absent_recipes[r.id] = self._usable(r.absent_if)

        def benign(system: str, code: str) -> bool:
            return not any(vs.contains(system, code) for vs in all_sets)

        self.bg_conditions = [Code(*x) for x in BACKGROUND_CONDITIONS if benign(x[0], x[1])]
        self.bg_labs = [x for x in BACKGROUND_LABS if benign("loinc", x[0])]
        self.bg_meds = [Code("rxnorm", *x) for x in BACKGROUND_MEDS if benign("rxnorm", x[0])]
        self.bg_procedures = [Code(*x) for x in BACKGROUND_PROCEDURES if benign(x[0], x[1])]
        self.bg_allergies = [Code(*x) for x in BACKGROUND_ALLERGIES if benign(x[0], x[1])]

    def _usable(self, criteria: tuple[CompiledCriterion, ...]) -> list[CompiledCriterion]:
        return [c for c in criteria if c.kind in PLANTABLE
                and (c.kind == "questionnaire" or self._criterion_codes(c))]

    # -- codes -------------------------------------------------------------------------------
    def valueset_codes(self, vs: CompiledValueSet) -> list[Code]:
        """Concrete codes of a value set (listed codes and the first category of each ICD-10-CM
        range), each checked against the compiled set (so exclusions hold)."""
        cached = self._codes.get(vs.id)
        if cached is not None:
            return cached
        vdef = self.ruleset.kb.valuesets.get(vs.id)
        out: list[Code] = []
        if vdef is not None:
            for inc in vdef.include:
                for ce in inc.codes:
                    out.append(Code(inc.system, ce.code, ce.display or vdef.title))
                for rng in inc.ranges:
                    lo = rng.split("-")[0].strip()
                    if inc.system in (ICD10CM, ICD10):
                        out.append(Code(inc.system, lo, _icd_display(lo, vdef.title)))
        out = [c for c in out if vs.contains(c.system, c.code)]
        self._codes[vs.id] = out
        return out

    def _criterion_codes(self, c: CompiledCriterion) -> list[Code]:
        codes: list[Code] = []
        for vs in c.valuesets:
            codes.extend(self.valueset_codes(vs))
        return [x for x in codes
                if not any(e.contains(x.system, x.code) for e in (*c.excludes, *c.ended_by))]

    @staticmethod
    def codes_of(resources: list[Resource]) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for r in resources:
            for key in ("code", "medicationCodeableConcept"):
                for c in (r.get(key) or {}).get("coding", []):
                    out.add((system_key(c.get("system")) or "", c["code"]))
        return out

    def has_absent_data(self, rule_id: str, codes: set[tuple[str, str]]) -> bool:
        """True when codes already planted fall in the value sets of the rule's absent_if."""
        return any(vs.contains(s, code) for c in self.absent_recipes.get(rule_id, ())
                   for vs in c.valuesets for s, code in codes)

    # -- applicability -----------------------------------------------------------------------
    def applicable(self, rule_id: str, sex: str, age: int, absent: bool = False) -> bool:
        r = self.rules[rule_id]
        if not (self.absent_recipes if absent else self.recipes).get(rule_id):
            return False
        if r.sexes and sex not in r.sexes:
            return False
        if r.min_age is not None and age < r.min_age:
            return False
        return not (r.max_age is not None and age > r.max_age)

    # -- planting ----------------------------------------------------------------------------
    def plant(self, rule_id: str, rng: random.Random, pid: str, as_of: dt.date,
              new_id: Any, absent: bool = False,
              choose: Any = None) -> list[Resource]:
        """Resources that make ``rule_id`` present (or, with ``absent``, absent) for patient
        ``pid`` on ``as_of``. ``choose`` picks the criterion (default: at random)."""
        options = (self.absent_recipes if absent else self.recipes)[rule_id]
        c = choose(options) if choose is not None else rng.choice(options)
        subject = {"reference": f"Patient/{pid}"}
        if c.kind == "questionnaire":
            return [_answer(c, subject, as_of, new_id())]
        code = rng.choice(self._criterion_codes(c))

        def recent(limit: int | None, default_max: int) -> dt.date:
            top = max(1, (limit - 1) if limit is not None else default_max)
            return as_of - dt.timedelta(days=rng.randint(1, max(1, min(top, default_max))))

        if c.kind == "condition":
            res: Resource = {
                "resourceType": "Condition", "id": new_id(),
                "clinicalStatus": _cs("active"),
                "verificationStatus": _vs("confirmed"),
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "problem-list-item"}]}],
                "code": code.concept(), "subject": subject,
            }
            if c.status == "resolved":
                abate = recent(c.resolved_within_days, 1500)
                onset = abate - dt.timedelta(days=rng.randint(60, 400))
                res["clinicalStatus"] = _cs("resolved")
                res["abatementDateTime"] = abate.isoformat()
            else:
                onset = recent(c.onset_within_days, 900 if c.onset_within_days is None else 120)
            res["onsetDateTime"] = onset.isoformat()
            res["recordedDate"] = onset.isoformat()
            return [res]
        if c.kind == "observation":
            when = recent(c.within_days, 60)
            res = {"resourceType": "Observation", "id": new_id(), "status": "final",
                   "category": [{"coding": [{
                       "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                       "code": "laboratory"}]}],
                   "code": code.concept(), "subject": subject,
                   "effectiveDateTime": when.isoformat()}
            if c.value == "positive" or c.value == "negative":
                answer_vs = c.positive if c.value == "positive" else c.negative
                answers = self.valueset_codes(answer_vs) if answer_vs is not None else []
                if answers:
                    res["valueCodeableConcept"] = rng.choice(answers).concept()
                else:
                    res["interpretation"] = [{"coding": [{
                        "system": canonical_uri("v3-interpretation"),
                        "code": "POS" if c.value == "positive" else "NEG"}]}]
            elif c.value == "above-reference":
                upper = c.default_upper_limits.get(code.code, 10.0)
                res["valueQuantity"] = _qty(round(upper * rng.uniform(1.6, 4.0), 1), "U/mL")
                res["referenceRange"] = [{"low": _qty(0.0, "U/mL"), "high": _qty(upper, "U/mL")}]
            elif c.value == "below-reference":
                res["valueQuantity"] = _qty(round(rng.uniform(1.0, 4.0), 1), "U/mL")
                res["referenceRange"] = [{"low": _qty(10.0, "U/mL"), "high": _qty(40.0, "U/mL")}]
            else:  # any result: a normal one, under every rule's upper limit for the code
                upper = self.upper_limits.get(code.code, 10.0)
                res["valueQuantity"] = _qty(round(upper * rng.uniform(0.2, 0.5), 2), "U/mL")
                res["referenceRange"] = [{"low": _qty(0.0, "U/mL"), "high": _qty(upper, "U/mL")}]
            return [res]
        if c.kind == "medication":
            when = recent(c.within_days, 90)
            return [{"resourceType": "MedicationRequest", "id": new_id(), "status": "active",
                     "intent": "order", "medicationCodeableConcept": code.concept(),
                     "subject": subject, "authoredOn": when.isoformat()}]
        if c.kind == "procedure":
            when = recent(c.within_days, 700)
            return [{"resourceType": "Procedure", "id": new_id(), "status": "completed",
                     "code": code.concept(), "subject": subject,
                     "performedDateTime": when.isoformat()}]
        # allergy
        when = recent(None, 2000)
        return [{"resourceType": "AllergyIntolerance", "id": new_id(),
                 "clinicalStatus": {"coding": [{
                     "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                     "code": "active"}]},
                 "verificationStatus": {"coding": [{
                     "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                     "code": "confirmed"}]},
                 "code": code.concept(), "patient": subject, "recordedDate": when.isoformat()}]


def _answer(c: CompiledCriterion, subject: dict[str, str], as_of: dt.date, rid: str) -> Resource:
    want = c.answers[0] if c.answers else True
    if isinstance(want, bool):
        answer: dict[str, Any] = {"valueBoolean": want}
    elif isinstance(want, int | float):
        answer = {"valueInteger": int(want)}
    else:
        answer = {"valueCoding": {"code": str(want), "display": str(want)}}
    return {"resourceType": "QuestionnaireResponse", "id": rid, "status": "completed",
            "subject": subject, "authored": (as_of - dt.timedelta(days=1)).isoformat(),
            "item": [{"linkId": c.link_id, "answer": [answer]}]}


def _cs(code: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": code}]}


def _vs(code: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": code}]}


def _qty(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
