"""The subset of FHIR R4 the rules read, as msgspec structs — one per resource type.

Decoding goes through a tagged union on ``resourceType``: the resource types the rules read
get structs with exactly the fields needed (typed, so no second decode), and every other R4
type gets an empty struct, which msgspec fills by skipping the bytes without building any
Python objects. That is why screening outruns a generic JSON parse of the same bytes. An
unknown ``resourceType`` fails the union, which the reader reports as such.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec
from msgspec import Raw, Struct

from .resource_types import R4_RESOURCE_TYPES

_EMPTY = Raw()  # an absent raw field (msgspec.Raw cannot be Optional)


class FCoding(Struct):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class FCodeableConcept(Struct):
    coding: list[FCoding] | None = None
    text: str | None = None


class FReference(Struct):
    reference: str | None = None
    display: str | None = None


class FPeriod(Struct):
    start: str | None = None
    end: str | None = None


class FQuantity(Struct):
    value: float | None = None
    comparator: str | None = None
    unit: str | None = None
    code: str | None = None
    system: str | None = None


class FRange(Struct):
    low: FQuantity | None = None
    high: FQuantity | None = None
    text: str | None = None


class FAttachment(Struct):
    contentType: str | None = None
    data: str | None = None
    url: str | None = None
    title: str | None = None


class FContent(Struct):
    attachment: FAttachment | None = None


class FAnswer(Struct):
    valueBoolean: bool | None = None
    valueString: str | None = None
    valueInteger: int | None = None
    valueDecimal: float | None = None
    valueDate: str | None = None
    valueDateTime: str | None = None
    valueCoding: FCoding | None = None
    item: list[FQRItem] | None = None


class FQRItem(Struct):
    linkId: str | None = None
    text: str | None = None
    answer: list[FAnswer] | None = None
    item: list[FQRItem] | None = None


class FBase(Struct, tag_field="resourceType"):
    """Every resource: its id. Subclasses are tagged with their resource type."""

    id: str | None = None


class FClinical(FBase):
    status: str | None = None
    subject: FReference | None = None
    patient: FReference | None = None


class Patient(FBase, tag="Patient"):
    gender: str | None = None
    birthDate: str | None = None
    deceasedBoolean: bool | None = None
    deceasedDateTime: str | None = None


class Condition(FClinical, tag="Condition"):
    code: FCodeableConcept | None = None
    clinicalStatus: FCodeableConcept | None = None
    verificationStatus: FCodeableConcept | None = None
    onsetDateTime: str | None = None
    onsetPeriod: FPeriod | None = None
    onsetAge: FQuantity | None = None
    onsetRange: FRange | None = None
    onsetString: str | None = None
    abatementDateTime: str | None = None
    abatementPeriod: FPeriod | None = None
    abatementAge: FQuantity | None = None
    abatementRange: FRange | None = None
    abatementString: str | None = None
    abatementBoolean: bool | None = None  # STU3 leftover seen in the wild
    recordedDate: str | None = None


class Observation(FClinical, tag="Observation"):
    """Observations are most of a record's bytes and few matter to the rules: the code is
    decoded at once, the value parts kept raw and decoded only for observations a rule reads."""

    code: FCodeableConcept | None = None
    category: Raw = _EMPTY  # what kind of data it counts as (coverage): read per distinct value
    effectiveDateTime: str | None = None
    effectivePeriod: FPeriod | None = None
    effectiveInstant: str | None = None
    issued: str | None = None
    valueQuantity: Raw = _EMPTY
    valueCodeableConcept: Raw = _EMPTY
    valueString: Raw = _EMPTY
    valueBoolean: Raw = _EMPTY
    valueInteger: Raw = _EMPTY
    interpretation: Raw = _EMPTY
    referenceRange: Raw = _EMPTY


class _MedicationUse(FClinical):
    medicationCodeableConcept: FCodeableConcept | None = None
    medicationReference: FReference | None = None
    effectiveDateTime: str | None = None
    effectivePeriod: FPeriod | None = None
    contained: Raw = _EMPTY


class MedicationRequest(_MedicationUse, tag="MedicationRequest"):
    authoredOn: str | None = None


class MedicationStatement(_MedicationUse, tag="MedicationStatement"):
    dateAsserted: str | None = None


class Medication(FBase, tag="Medication"):
    code: FCodeableConcept | None = None


class Procedure(FClinical, tag="Procedure"):
    code: FCodeableConcept | None = None
    performedDateTime: str | None = None
    performedPeriod: FPeriod | None = None


class AllergyIntolerance(FClinical, tag="AllergyIntolerance"):
    code: FCodeableConcept | None = None
    clinicalStatus: FCodeableConcept | None = None
    verificationStatus: FCodeableConcept | None = None
    recordedDate: str | None = None
    onsetDateTime: str | None = None


class DocumentReference(FClinical, tag="DocumentReference"):
    content: list[FContent] | None = None
    date: str | None = None


class QuestionnaireResponse(FClinical, tag="QuestionnaireResponse"):
    item: list[FQRItem] | None = None
    authored: str | None = None


class Bundle(FBase, tag="Bundle"):
    entry: list[FEntry] | None = None


_READ = (Patient, Condition, Observation, MedicationRequest, MedicationStatement, Medication,
         Procedure, AllergyIntolerance, DocumentReference, QuestionnaireResponse, Bundle)
READ_TYPES = frozenset(c.__name__ for c in _READ)
_SKIPPED = tuple(
    msgspec.defstruct(name, [], bases=(FBase,), tag=name)
    for name in sorted(R4_RESOURCE_TYPES - {c.__name__ for c in _READ})
)
AnyResource = Union[_READ + _SKIPPED]  # type: ignore[valid-type]  # noqa: UP007


class FEntry(Struct):
    fullUrl: str | None = None
    resource: AnyResource | None = None  # type: ignore[valid-type]


class _Untyped(Struct):
    """Fallback to report a missing resourceType precisely."""

    resourceType: Any = None


RESOURCE_DECODER = msgspec.json.Decoder(AnyResource)
QUANTITY_DECODER = msgspec.json.Decoder(FQuantity | None)
CC_DECODER = msgspec.json.Decoder(FCodeableConcept | None)
STR_DECODER = msgspec.json.Decoder(str | None)
BOOL_DECODER = msgspec.json.Decoder(bool | None)
INT_DECODER = msgspec.json.Decoder(int | None)
CC_LIST_DECODER = msgspec.json.Decoder(list[FCodeableConcept] | None)
RANGE_LIST_DECODER = msgspec.json.Decoder(list[FRange] | None)
UNTYPED_DECODER = msgspec.json.Decoder(_Untyped)
CONTAINED_DECODER = msgspec.json.Decoder(list[AnyResource])  # type: ignore[valid-type]
