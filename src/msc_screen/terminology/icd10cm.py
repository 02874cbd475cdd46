"""ICD-10-CM against the official code table packaged by `simple-icd-10-cm`.

Value sets name ranges such as ``C00-C96`` (not always a block of the table), categories
such as ``I21`` and exact codes; expansion yields every code of the table they cover, with
all descendants, so records coded at any depth match.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import simple_icd_10_cm as _cm


def _nodot(code: str) -> str:
    return code.replace(".", "").upper()


def exists(code: str) -> bool:
    """True when ``code`` (with or without the dot) is a code or block of the official table."""
    try:
        return bool(_cm.is_valid_item(code.strip().upper()))
    except Exception:  # the library raises on odd input; an odd code simply does not exist
        return False


def description(code: str) -> str | None:
    try:
        return str(_cm.get_description(code.strip().upper()))
    except Exception:
        return None


@lru_cache(maxsize=1)
def _categories() -> tuple[str, ...]:
    return tuple(sorted(c for c in _cm.get_all_codes(with_dots=False) if _cm.is_category(c)))


def _descendants(code: str) -> list[str]:
    return [_nodot(c) for c in _cm.get_descendants(code)]


def expand(item: str) -> frozenset[str]:
    """Expand a code, a category or an ``A00-B99`` range into dot-less codes with descendants.

    Raises ValueError naming the item when it cannot be expanded.
    """
    item = item.strip().upper()
    if "-" in item:
        lo, _, hi = item.partition("-")
        lo, hi = _nodot(lo), _nodot(hi)
        if not (exists(lo) and exists(hi)):
            raise ValueError(f"range {item!r}: an end is not an ICD-10-CM code")
        if lo > hi:
            raise ValueError(f"range {item!r}: start sorts after end")
        out: set[str] = set()
        for cat in _categories():
            if lo[:3] <= cat <= hi[:3]:
                out.add(cat)
                out.update(_descendants(cat))
        if not out:
            raise ValueError(f"range {item!r} covers no category")
        return frozenset(out)
    if not exists(item):
        raise ValueError(f"{item!r} is not in the ICD-10-CM table")
    return frozenset({_nodot(item), *(_descendants(item))}) - {""}
