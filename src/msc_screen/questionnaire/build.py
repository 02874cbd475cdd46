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

from ..knowledge import get_ruleset
from ..knowledge.schema import EnableWhen, Question

QUESTIONNAIRE_ID = "msc-prescreen"
QUESTIONNAIRE_URL = "http://msc-screen.local/fhir/Questionnaire/msc-prescreen"
ANSWER_SYSTEM = "http://msc-screen.local/fhir/CodeSystem/msc-prescreen-answers"
DEFAULT_SECTION = "About your health"

_FHIR_TYPES = {"boolean": "boolean", "choice": "choice", "date": "date", "integer": "integer",
               "decimal": "decimal", "string": "string", "text": "text"}
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
            "item": [self._group(s) for s in self.sections],
        }

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


def build_form(policy: str | None = None) -> FormDef:
    """The questionnaire for ``policy`` (cached per policy; rules are immutable at runtime)."""
    return _build(policy)


@lru_cache(maxsize=16)
def _build(policy: str | None) -> FormDef:
    ruleset = get_ruleset(policy)
    sections: dict[str, Section] = {}
    form = FormDef(sections=[], ruleset=dict(ruleset.ruleset_info))
    for rule in sorted(ruleset.rules, key=lambda r: (r.definition.order, r.id)):
        for q in rule.definition.questions:
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
    return form
