"""Which suggested tests can be drafted as orders, coded how, and for whom (``orderables.json``
or a site's copy): data, so a site maps the knowledge base's LOINC codes to its own order
catalogue without touching code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...render.cards import Orderable, Orderables

DEFAULT_FILE = Path(__file__).with_name("orderables.json")


def load_orderables(path: str | Path | None = None) -> Orderables:
    p = Path(path) if path else DEFAULT_FILE
    try:
        data = json.loads(p.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: cannot read orderable tests ({exc})") from None
    tests: dict[tuple[str, str], Orderable] = {}
    try:
        category: dict[str, Any] | None = data.get("category")
        for i, t in enumerate(data["tests"]):
            sex = t.get("sex")
            if sex not in (None, "male", "female"):
                raise ValueError(f"{p}: tests[{i}].sex must be 'male' or 'female'")
            order = {k: str(v) for k, v in t["order"].items() if v}
            if not order.get("system") or not order.get("code"):
                raise KeyError("order.system/order.code")
            tests[(str(t["for"]["system"]), str(t["for"]["code"]))] = Orderable(
                str(t["name"]), order, sex)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{p}: expected tests [{{for: {{system, code}}, name, order: "
                         f"{{system, code}}, sex?}}] ({exc})") from None
    return Orderables(tests, category)
