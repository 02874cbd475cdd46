"""Canonical code-system keys.

Records spell one system many ways (URI, OID, edition URI, bare name); rules use short keys.
Matching happens on (key, normalised code) pairs so spelling never hides a contraindication.
"""

from __future__ import annotations

SNOMED = "snomed"
ICD10CM = "icd10cm"
ICD10 = "icd10"
LOINC = "loinc"
RXNORM = "rxnorm"
ATC = "atc"
CVX = "cvx"
UNII = "unii"
NDC = "ndc"
HL7_INTERPRETATION = "v3-interpretation"
TEXT = "text"

CANONICAL_URI: dict[str, str] = {
    SNOMED: "http://snomed.info/sct",
    ICD10CM: "http://hl7.org/fhir/sid/icd-10-cm",
    ICD10: "http://hl7.org/fhir/sid/icd-10",
    LOINC: "http://loinc.org",
    RXNORM: "http://www.nlm.nih.gov/research/umls/rxnorm",
    ATC: "http://www.whocc.no/atc",
    CVX: "http://hl7.org/fhir/sid/cvx",
    UNII: "http://fdasis.nlm.nih.gov",
    NDC: "http://hl7.org/fhir/sid/ndc",
    HL7_INTERPRETATION: "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
}

# How people name each system in a sentence ("SNOMED CT 93761005 is in no value set ...").
SYSTEM_NAME: dict[str, str] = {
    SNOMED: "SNOMED CT",
    ICD10CM: "ICD-10-CM",
    ICD10: "ICD-10",
    LOINC: "LOINC",
    RXNORM: "RxNorm",
    ATC: "ATC",
    CVX: "CVX",
    UNII: "UNII",
    NDC: "NDC",
    HL7_INTERPRETATION: "HL7 ObservationInterpretation",
}

_ALIASES: dict[str, str] = {
    # SNOMED CT
    "http://snomed.info/sct": SNOMED,
    "https://snomed.info/sct": SNOMED,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.96": SNOMED,
    "snomed": SNOMED,
    "snomedct": SNOMED,
    "snomed-ct": SNOMED,
    "snomed ct": SNOMED,
    "sct": SNOMED,
    # ICD-10-CM
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10CM,
    "https://hl7.org/fhir/sid/icd-10-cm": ICD10CM,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    "2.16.840.1.113883.6.90": ICD10CM,
    "http://www.cms.gov/medicare/coding/icd10": ICD10CM,
    "icd-10-cm": ICD10CM,
    "icd10cm": ICD10CM,
    "icd10-cm": ICD10CM,
    # WHO ICD-10 (categories coincide with ICD-10-CM at the 3-character level)
    "http://hl7.org/fhir/sid/icd-10": ICD10,
    "urn:oid:2.16.840.1.113883.6.3": ICD10,
    "icd-10": ICD10,
    "icd10": ICD10,
    # LOINC
    "http://loinc.org": LOINC,
    "https://loinc.org": LOINC,
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "loinc": LOINC,
    # RxNorm
    "http://www.nlm.nih.gov/research/umls/rxnorm": RXNORM,
    "https://www.nlm.nih.gov/research/umls/rxnorm": RXNORM,
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    "rxnorm": RXNORM,
    # others
    "http://www.whocc.no/atc": ATC,
    "urn:oid:2.16.840.1.113883.6.73": ATC,
    "atc": ATC,
    "http://hl7.org/fhir/sid/cvx": CVX,
    "cvx": CVX,
    "http://fdasis.nlm.nih.gov": UNII,
    "urn:oid:2.16.840.1.113883.4.9": UNII,
    "unii": UNII,
    "http://hl7.org/fhir/sid/ndc": NDC,
    "ndc": NDC,
    "http://terminology.hl7.org/codesystem/v3-observationinterpretation": HL7_INTERPRETATION,
    "http://hl7.org/fhir/v2/0078": HL7_INTERPRETATION,
    "http://terminology.hl7.org/codesystem/v2-0078": HL7_INTERPRETATION,
}

_cache: dict[str, str | None] = {}


def system_key(system: str | None) -> str | None:
    """Map any spelling of a code-system identifier to its short key (None when unknown)."""
    if system is None:
        return None
    hit = _cache.get(system)
    if hit is not None or system in _cache:
        return hit
    s = system.strip().lower().rstrip("/")
    key = _ALIASES.get(s)
    if key is None and s.startswith(("http://snomed.info/sct/", "https://snomed.info/sct/")):
        key = SNOMED  # edition / version URIs
    if key is None and s.startswith("http://snomed.info/id/"):
        key = SNOMED
    if len(_cache) < 10_000:
        _cache[system] = key
    return key


def system_name(key: str | None) -> str:
    """A system as a reader names it: "SNOMED CT", or the raw URI of a local system."""
    if key is None:
        return "a code with no system"
    return SYSTEM_NAME.get(key, f"code system {key}")


def canonical_uri(key: str) -> str:
    return CANONICAL_URI.get(key, key)


def normalise_code(key: str | None, code: str) -> str:
    """ICD codes compare without the dot and case; other systems compare as given (trimmed)."""
    code = code.strip()
    if key in (ICD10CM, ICD10):
        return code.replace(".", "").upper()
    return code
