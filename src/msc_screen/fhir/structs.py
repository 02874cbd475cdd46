"""The subset of FHIR R4 the rules read, as msgspec structs.

Only these fields are materialised; every other field and extension is skipped by the
decoder without building Python objects, which is why screening outruns a generic JSON parse.
Fields whose type differs between resource types (``code``, ``category``, ``item``,
``content``) are kept as raw JSON and decoded only for the resource types that need them.
"""

from __future__ import annotations

import msgspec
from msgspec import Raw, Struct

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


class FResource(Struct):
    resourceType: str | None = None
    id: str | None = None
    status: str | None = None
    subject: FReference | None = None
    patient: FReference | None = None
    code: Raw = _EMPTY
    # Patient
    gender: str | None = None
    birthDate: str | None = None
    deceasedBoolean: bool | None = None
    deceasedDateTime: str | None = None
    # Condition / AllergyIntolerance
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
    # Observation
    effectiveDateTime: str | None = None
    effectivePeriod: FPeriod | None = None
    effectiveInstant: str | None = None
    issued: str | None = None
    valueQuantity: FQuantity | None = None
    valueCodeableConcept: FCodeableConcept | None = None
    valueString: str | None = None
    valueBoolean: bool | None = None
    valueInteger: int | None = None
    interpretation: list[FCodeableConcept] | None = None
    referenceRange: list[FRange] | None = None
    # MedicationRequest / MedicationStatement
    medicationCodeableConcept: FCodeableConcept | None = None
    medicationReference: FReference | None = None
    authoredOn: str | None = None
    dateAsserted: str | None = None
    # Procedure
    performedDateTime: str | None = None
    performedPeriod: FPeriod | None = None
    # DocumentReference / QuestionnaireResponse
    content: Raw = _EMPTY
    date: str | None = None
    item: Raw = _EMPTY
    authored: str | None = None
    # Bundle
    type: Raw = _EMPTY
    entry: list[FEntry] | None = None
    contained: list[FResource] | None = None


class FEntry(Struct):
    fullUrl: str | None = None
    resource: FResource | None = None


RESOURCE_DECODER = msgspec.json.Decoder(FResource)
CC_DECODER = msgspec.json.Decoder(FCodeableConcept)
CONTENT_DECODER = msgspec.json.Decoder(list[FContent])
QR_ITEMS_DECODER = msgspec.json.Decoder(list[FQRItem])
