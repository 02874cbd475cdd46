"""Is there an IV MSC therapy order among the draft orders? Codes and phrases come from a
data file (``msc_orders.json`` or ``--msc-orders``), so sites add their own order codes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).with_name("msc_orders.json")
_CODE_FIELDS = ("medicationCodeableConcept", "code", "productCodeableConcept",
                "codeCodeableConcept")


@dataclass(frozen=True)
class MscOrderMatcher:
    resource_types: frozenset[str]
    codes: frozenset[tuple[str, str]]
    texts: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path | None = None) -> MscOrderMatcher:
        p = Path(path) if path else DEFAULT_FILE
        try:
            data = json.loads(p.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p}: cannot read MSC order codes ({exc})") from None
        try:
            codes = frozenset((str(c["system"]), str(c["code"])) for c in data.get("codes", []))
            texts = tuple(str(t).lower() for t in data.get("texts", []) if str(t).strip())
            types = frozenset(str(t) for t in data["resourceTypes"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{p}: expected resourceTypes, codes [{{system, code}}] and "
                             f"texts ({exc})") from None
        return cls(types, codes, texts)

    def _concept_matches(self, cc: Any) -> bool:
        if not isinstance(cc, dict):
            return False
        strings = [cc.get("text")]
        for c in cc.get("coding") or ():
            if not isinstance(c, dict):
                continue
            if (str(c.get("system")), str(c.get("code"))) in self.codes:
                return True
            strings.append(c.get("display"))
        return any(isinstance(s, str) and any(t in s.lower() for t in self.texts)
                   for s in strings)

    def matches(self, resource: Any, medications: dict[str, Any] | None = None) -> bool:
        """``medications``: Medication resources by reference (``Medication/id``) that a
        ``medicationReference`` may point to (the draftOrders Bundle's, or fetched)."""
        if not isinstance(resource, dict) or resource.get("resourceType") not in \
                self.resource_types:
            return False
        if any(self._concept_matches(resource.get(f)) for f in _CODE_FIELDS):
            return True
        med = medication_of(resource, medications or {})
        ref = resource.get("medicationReference")
        return (med is not None and self._concept_matches(med.get("code"))) or (
            isinstance(ref, dict) and self._concept_matches({"text": ref.get("display")}))

    def msc_orders(self, draft_orders: Any, selections: Any = None,
                   medications: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The matching resources of a ``draftOrders`` Bundle (or list of resources); with
        ``selections`` (order-select), only those selected ("Type/id")."""
        resources = _resources(draft_orders)
        meds = dict(medications or {})
        for r in resources:
            if isinstance(r, dict) and r.get("resourceType") == "Medication" and r.get("id"):
                meds.setdefault(f"Medication/{r['id']}", r)
        if isinstance(selections, list):
            chosen = {s for s in selections if isinstance(s, str)}
            resources = [r for r in resources if isinstance(r, dict)
                         and f"{r.get('resourceType')}/{r.get('id')}" in chosen]
        return [r for r in resources if self.matches(r, meds)]

    def unresolved_medications(self, draft_orders: Any, selections: Any = None) -> list[str]:
        """``Medication/id`` references of draft orders that neither match by themselves nor
        resolve in the Bundle: the service fetches these from fhirServer."""
        resources = _resources(draft_orders)
        have = {f"Medication/{r.get('id')}" for r in resources
                if isinstance(r, dict) and r.get("resourceType") == "Medication"}
        if isinstance(selections, list):
            resources = [r for r in resources if isinstance(r, dict) and
                         f"{r.get('resourceType')}/{r.get('id')}" in selections]
        out = []
        for r in resources:
            ref = r.get("medicationReference") if isinstance(r, dict) else None
            target = ref.get("reference") if isinstance(ref, dict) else None
            if (isinstance(target, str) and target.startswith("Medication/")
                    and target not in have and not self.matches(r)):
                out.append(target)
        return sorted(set(out))


def _resources(draft_orders: Any) -> list[Any]:
    if isinstance(draft_orders, dict):
        entries = draft_orders.get("entry") or []
        return [e.get("resource") for e in entries if isinstance(e, dict)]
    if isinstance(draft_orders, list):
        return list(draft_orders)
    return []


def medication_of(order: dict[str, Any], medications: dict[str, Any]) -> dict[str, Any] | None:
    """The Medication a ``medicationReference`` points to: contained (``#id``), in
    ``medications`` (``Medication/id``, or a full URL ending in it)."""
    ref = order.get("medicationReference")
    target = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(target, str) or not target:
        return None
    if target.startswith("#"):
        for c in order.get("contained") or ():
            if isinstance(c, dict) and c.get("resourceType") == "Medication" \
                    and c.get("id") == target[1:]:
                return c
        return None
    key = "Medication/" + target.rsplit("Medication/", 1)[1] if "Medication/" in target else target
    med = medications.get(key)
    return med if isinstance(med, dict) else None
