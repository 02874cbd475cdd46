"""Check digits that catch mistyped codes without a licensed terminology server."""

from __future__ import annotations

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(number: str) -> bool:
    """True when the last digit is the Verhoeff check digit of the rest (SNOMED CT ids)."""
    if not number.isdigit():
        return False
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][int(ch)]]
    return c == 0


def snomed_id_valid(sctid: str) -> bool:
    """SNOMED CT identifier: 6-18 digits, no leading zero, valid partition, Verhoeff digit."""
    if not sctid.isdigit() or not 6 <= len(sctid) <= 18 or sctid[0] == "0":
        return False
    partition = sctid[-3:-1]
    if partition not in {"00", "01", "02", "03", "04", "05", "10", "11", "12", "13", "14", "15"}:
        return False
    return verhoeff_valid(sctid)


def loinc_valid(code: str) -> bool:
    """LOINC code NNNNN-C where C is the mod-10 (Luhn-style) check digit of the number part."""
    body, sep, check = code.partition("-")
    if not sep or not body.isdigit() or len(check) != 1 or not check.isdigit():
        return False
    return _mod10(body) == int(check)


def _mod10(digits: str) -> int:
    # LOINC: double every other digit starting from the rightmost, sum digits, 10 - (sum mod 10)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def loinc_answer_format_valid(code: str) -> bool:
    """LOINC answer (LA) and part (LP) codes have no published check-digit algorithm we can
    rely on here, so only their shape is checked."""
    return bool(len(code) > 4 and code[:2] in ("LA", "LP") and code[2:].replace("-", "").isdigit()
                and code.count("-") == 1)
