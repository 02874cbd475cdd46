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

    def matches(self, resource: Any) -> bool:
        if not isinstance(resource, dict) or resource.get("resourceType") not in \
                self.resource_types:
            return False
        return any(self._concept_matches(resource.get(f)) for f in _CODE_FIELDS)

    def msc_orders(self, draft_orders: Any) -> list[dict[str, Any]]:
        """The matching resources of a ``draftOrders`` Bundle (or list of resources)."""
        resources: list[Any]
        if isinstance(draft_orders, dict):
            entries = draft_orders.get("entry") or []
            resources = [e.get("resource") for e in entries if isinstance(e, dict)]
        elif isinstance(draft_orders, list):
            resources = draft_orders
        else:
            return []
        return [r for r in resources if self.matches(r)]
