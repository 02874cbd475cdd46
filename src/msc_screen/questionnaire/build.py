"""One FHIR R4 Questionnaire from the questions every rule declares.

Sections follow rule order (the order a reader meets them in reports); a question two rules
share (same ``link_id``) appears once. Nothing here decides anything clinical: the text,
options and follow-up conditions all come from the rule files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import msgspec

from ..knowledge import get_ruleset
from ..knowledge.compiled import CompiledRule
from ..knowledge.schema import EnableWhen, Option, Question

QUESTIONNAIRE_ID = "msc-prescreen"
QUESTIONNAIRE_URL = "http://msc-screen.local/fhir/Questionnaire/msc-prescreen"
ANSWER_SYSTEM = "http://msc-screen.local/fhir/CodeSystem/msc-prescreen-answers"
DEFAULT_SECTION = "About your health"

_FHIR_TYPES = {"boolean": "boolean", "choice": "choice", "date": "date", "integer": "integer",
               "decimal": "decimal", "string": "string", "text": "text"}
EXT = "http://hl7.org/fhir/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
SEXES = ("female", "male", "other", "unknown")
# What the clinic recorded about the patient, pre-filled (hidden, read-only) so that a rule's
# applicability (sex, age) becomes ordinary enableWhen on its questions. A condition on a
# pre-filled item the clinic left blank counts as met: missing sex or age never hides a
# question, as it never makes a rule inapplicable.
PATIENT_SEX = Question(link_id="patient-sex", text="Sex recorded by the clinic", type="choice",
                       options=[Option(code=c, display=c.capitalize()) for c in SEXES])
PATIENT_AGE = Question(link_id="patient-age", text="Age in years on the day of answering",
                       type="integer")
CONTEXT = (PATIENT_SEX, PATIENT_AGE)
_CONTEXT_EXPR = {"patient-sex": ("text/fhirpath", "%patient.gender"),
                 "patient-age": ("text/cql-expression", "AgeInYears()")}

_ANSWER_KEYS = {"boolean": "answerBoolean", "date": "answerDate", "integer": "answerInteger",
                "decimal": "answerDecimal", "string": "answerString", "text": "answerString"}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


@dataclass
class Section:
    title: str
    slug: str
    questions: list[Question] = field(default_factory=list)


@dataclass
class FormDef:
    """The questionnaire as the web form and the response writer need it."""

    sections: list[Section]
    ruleset: dict[str, str]
    by_id: dict[str, Question] = field(default_factory=dict)
    rules_for: dict[str, list[str]] = field(default_factory=dict)  # link_id -> rule ids
    context: tuple[Question, ...] = CONTEXT  # pre-filled from the clinic's record

    @property
    def context_ids(self) -> frozenset[str]:
        return frozenset(q.link_id for q in self.context)

    @property
    def questions(self) -> list[Question]:
        return [q for s in self.sections for q in s.questions]

    @property
    def version(self) -> str:
        return f"{self.ruleset.get('version', '0')}+{self.ruleset.get('sha256', '')[:12]}"

    def section_of(self, link_id: str) -> Section:
        for s in self.sections:
            if any(q.link_id == link_id for q in s.questions):
                return s
        raise KeyError(link_id)

    def to_fhir(self) -> dict[str, Any]:
        """The FHIR R4 Questionnaire resource (groups per section, enableWhen follow-ups)."""
        return {
            "resourceType": "Questionnaire",
            "id": QUESTIONNAIRE_ID,
            "url": QUESTIONNAIRE_URL,
            "version": self.version,
            "name": "MscPrescreen",
            "title": "Pre-screening questionnaire for IV MSC therapy",
            "status": "active",
            "subjectType": ["Patient"],
            "description": ("Built from the msc-screen knowledge base: each rule declares the "
                            "patient-facing questions it needs."),
            "item": [self._context_group(), *(self._group(s) for s in self.sections)],
        }

    def _context_group(self) -> dict[str, Any]:
        items = []
        for q in self.context:
            item = self._item(q)
            lang, expr = _CONTEXT_EXPR[q.link_id]
            item["readOnly"] = True
            item["extension"] = [
                {"url": EXT + "questionnaire-hidden", "valueBoolean": True},
                {"url": SDC + "sdc-questionnaire-initialExpression",
                 "valueExpression": {"language": lang, "expression": expr}}]
            items.append(item)
        return {"linkId": "section-patient", "type": "group", "text": "About the patient",
                "extension": [{"url": EXT + "questionnaire-hidden", "valueBoolean": True}],
                "item": items}

    def _group(self, s: Section) -> dict[str, Any]:
        return {"linkId": f"section-{s.slug}", "type": "group", "text": s.title,
                "item": [self._item(q) for q in s.questions]}

    def _item(self, q: Question) -> dict[str, Any]:
        item: dict[str, Any] = {"linkId": q.link_id, "text": q.text, "type": _FHIR_TYPES[q.type]}
        if q.required:
            item["required"] = True
        if q.options:
            item["answerOption"] = [
                {"valueCoding": {"system": ANSWER_SYSTEM, "code": o.code, "display": o.display}}
                for o in q.options]
        if q.enable_when:
            item["enableWhen"] = [self._enable_when(ew) for ew in q.enable_when]
            if len(q.enable_when) > 1:
                item["enableBehavior"] = "all"
        ext = _range_extensions(q)
        if ext:
            item["extension"] = ext
        if q.help:
            item["item"] = [{"linkId": f"{q.link_id}-help", "type": "display", "text": q.help}]
        return item

    def _enable_when(self, ew: EnableWhen) -> dict[str, Any]:
        out: dict[str, Any] = {"question": ew.question, "operator": ew.operator}
        if ew.operator == "exists":
            out["answerBoolean"] = True if ew.answer is None else bool(ew.answer)
            return out
        target = self.by_id.get(ew.question)
        kind = target.type if target else "string"
        if kind == "choice":
            out["answerCoding"] = {"system": ANSWER_SYSTEM, "code": str(ew.answer)}
        else:
            out[_ANSWER_KEYS[kind]] = ew.answer
        return out


def _range_extensions(q: Question) -> list[dict[str, Any]]:
    """minValue/maxValue (a date not in the future: maxValue ``today()``)."""
    key = "valueInteger" if q.type == "integer" else "valueDecimal"
    num = int if q.type == "integer" else float
    out: list[dict[str, Any]] = []
    for name, v in (("minValue", q.min_value), ("maxValue", q.max_value)):
        if v is not None and q.type in ("integer", "decimal"):
            out.append({"url": EXT + name, key: num(v)})
    if q.not_in_future and q.type == "date":
        out.append({"url": EXT + "maxValue", "_valueDate": {"extension": [
            {"url": EXT + "cqf-expression",
             "valueExpression": {"language": "text/fhirpath", "expression": "today()"}}]}})
    return out


def applies_when(rule: CompiledRule) -> list[EnableWhen]:
    """The rule's applicability (sex, age; policy parameters resolved) as enableWhen on the
    pre-filled patient items: its questions are asked only of people it applies to."""
    # only a recorded male or female sex outside the rule's hides its questions ("other" and
    # "unknown" are asked: asking too much is safe, hiding is not)
    out = [EnableWhen(question="patient-sex", operator="!=", answer=s)
           for s in ("female", "male") if rule.sexes and s not in rule.sexes]
    if rule.min_age is not None:
        out.append(EnableWhen(question="patient-age", operator=">=", answer=rule.min_age))
    if rule.max_age is not None:
        out.append(EnableWhen(question="patient-age", operator="<=", answer=rule.max_age))
    return out


def _under_triggers(questions: list[Question]) -> list[Question]:
    """Each follow-up directly under the question it depends on (after that question's
    earlier follow-ups), so a revealed question appears where the patient is looking."""
    here = {q.link_id for q in questions}
    out: list[Question] = []
    for q in questions:
        trig = next((ew.question for ew in q.enable_when if ew.question in here), None)
        if trig is None or trig not in {x.link_id for x in out}:
            out.append(q)
            continue
        i = max(i for i, x in enumerate(out)
                if x.link_id == trig or any(ew.question == trig for ew in x.enable_when))
        out.insert(i + 1, q)
    return out


def build_form(policy: str | None = None) -> FormDef:
    """The questionnaire for ``policy`` (cached per policy; rules are immutable at runtime)."""
    return _build(policy)


@lru_cache(maxsize=16)
def _build(policy: str | None) -> FormDef:
    ruleset = get_ruleset(policy)
    sections: dict[str, Section] = {}
    form = FormDef(sections=[], ruleset=dict(ruleset.ruleset_info))
    for rule in sorted(ruleset.rules, key=lambda r: (r.definition.order, r.id)):
        extra = applies_when(rule)
        for q in rule.definition.questions:
            if extra:
                q = msgspec.structs.replace(q, enable_when=[*q.enable_when, *extra])
            form.rules_for.setdefault(q.link_id, []).append(rule.id)
            if q.link_id in form.by_id:
                continue
            title = q.section or DEFAULT_SECTION
            sec = sections.get(title)
            if sec is None:
                sec = sections[title] = Section(title, slug(title))
                form.sections.append(sec)
            sec.questions.append(q)
            form.by_id[q.link_id] = q
    for sec in form.sections:
        sec.questions = _under_triggers(sec.questions)
    for q in form.context:
        form.by_id.setdefault(q.link_id, q)
    return form
