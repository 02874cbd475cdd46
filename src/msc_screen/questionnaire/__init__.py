"""The patient pre-screening questionnaire, built from the rules' ``questions``.

``build`` turns the knowledge base into one FHIR R4 Questionnaire; ``response`` validates
submitted answers against it (re-evaluating ``enableWhen`` on the server, so answers to
disabled questions are dropped) and writes the QuestionnaireResponse the engine reads.
"""

from __future__ import annotations

from .build import QUESTIONNAIRE_ID, QUESTIONNAIRE_URL, FormDef, Section, build_form
from .response import (
    Answers,
    FieldError,
    answers_from_response,
    context_answers,
    enabled_questions,
    parse_form,
    to_response,
)

__all__ = [
    "QUESTIONNAIRE_ID", "QUESTIONNAIRE_URL", "Answers", "FieldError", "FormDef", "Section",
    "answers_from_response", "build_form", "context_answers", "enabled_questions", "parse_form", "to_response",
]
