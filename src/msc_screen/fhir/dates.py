"""FHIR date, dateTime and instant values as date ranges at their recorded precision."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from functools import lru_cache

from ..model import DateRange

_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
    r"(?:Z|[+-]\d{2}:\d{2})?)?)?)?"
)


class BadDate(ValueError):
    pass


@lru_cache(maxsize=65536)
def parse_date(value: str) -> DateRange:
    """Parse a FHIR date/dateTime/instant; the local calendar date as recorded is kept.

    Raises BadDate for malformed or impossible values (e.g. 2024-02-31). Messages never
    repeat the value: a date can identify a patient.
    """
    m = _DATE.fullmatch(value.strip())
    if m is None:
        raise BadDate("not a FHIR date/dateTime (expected YYYY, YYYY-MM, YYYY-MM-DD or an ISO dateTime)")
    y, mo, d = m.group(1), m.group(2), m.group(3)
    try:
        year = int(y)
        if year < 1:
            raise BadDate("impossible date (year 0)")
        if mo is None:
            return DateRange(dt.date(year, 1, 1), dt.date(year, 12, 31), y)
        month = int(mo)
        if d is None:
            last = calendar.monthrange(year, month)[1]
            return DateRange(dt.date(year, month, 1), dt.date(year, month, last), f"{y}-{mo}")
        day = dt.date(year, month, int(d))
        if m.group(4) is not None and (int(m.group(4)) > 23 or int(m.group(5)) > 59
                                       or (m.group(6) and int(m.group(6)) > 60)):
            raise BadDate("impossible time of day")
        return DateRange(day, day, day.isoformat())
    except ValueError as exc:
        if isinstance(exc, BadDate):
            raise
        raise BadDate("impossible date (no such day or month)") from None


def add_years(birth: DateRange, years: float) -> DateRange:
    """A date given as an age (onsetAge): the year of life it falls in."""
    whole = int(years)
    try:
        lo = birth.lo.replace(year=birth.lo.year + whole)
    except ValueError:  # 29 February
        lo = birth.lo.replace(year=birth.lo.year + whole, day=28)
    hi = lo.replace(year=lo.year + 1) - dt.timedelta(days=1) if lo.year < 9999 else lo
    return DateRange(lo, hi, f"age {years:g}")
