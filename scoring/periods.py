"""Reporting periods: month, quarter, year — in Vietnam local time, named like `month:2026-09`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from scoring.calendar import DAY, EPOCH_ORDINAL, UTC_OFFSET_SECONDS, VIETNAM

_PATTERN = re.compile(r"^(?:month:(\d{4})-(0[1-9]|1[0-2])|quarter:(\d{4})-Q([1-4])|year:(\d{4}))$")


EARLIEST_YEAR, LATEST_YEAR = 1970, 2999  # the calendar (and epoch seconds) are defined there


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    key: str
    kind: str
    first_month: int  # months since year 0: year * 12 + month - 1
    months: int
    start: int  # epoch seconds, inclusive
    end: int  # epoch seconds, inclusive (one second before the next period starts)

    def contains(self, moment: int) -> bool:
        return self.start <= moment <= self.end

    @property
    def previous(self) -> Period:
        return period_at(self.kind, self.first_month - self.months)


def _month_start(month_index: int) -> int:
    year, month = divmod(month_index, 12)
    return int(datetime(year, month + 1, 1, tzinfo=VIETNAM).timestamp())


@lru_cache(maxsize=4096)
def period_at(kind: str, month_index: int) -> Period:
    """The period of `kind` that contains the month `month_index` (year * 12 + month - 1)."""
    year, month0 = divmod(month_index, 12)
    if kind == "month":
        first, length, key = month_index, 1, f"month:{year}-{month0 + 1:02d}"
    elif kind == "quarter":
        first, length, key = year * 12 + month0 // 3 * 3, 3, f"quarter:{year}-Q{month0 // 3 + 1}"
    elif kind == "year":
        first, length, key = year * 12, 12, f"year:{year}"
    else:
        raise PeriodError(f"unknown period kind {kind!r}")
    return Period(key, kind, first, length, _month_start(first), _month_start(first + length) - 1)


ROMAN = ("I", "II", "III", "IV")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")
# What people write: "Tháng 9/2026", "tháng 09/2026", "9/2026", "2026-09"; "Quý III/2026", "Quý 3/2026",
# "Q3/2026", "2026-Q3"; "Năm 2026" — each turned into the canonical key.
_HUMAN = (
    (re.compile(r"^(?:tháng|thang|month)?\s*(\d{1,2})\s*/\s*(\d{4})$", re.I),
     lambda m: f"month:{m[2]}-{int(m[1]):02d}" if 1 <= int(m[1]) <= 12 else None),
    (re.compile(r"^(\d{4})-(\d{2})$"), lambda m: f"month:{m[1]}-{m[2]}"),
    (re.compile(r"^(?:quý|quy|q|quarter)\s*(I{1,3}|IV|[1-4])\s*/\s*(\d{4})$", re.I),
     lambda m: f"quarter:{m[2]}-Q{_quarter_number(m[1])}"),
    (re.compile(r"^(\d{4})-?Q([1-4])$", re.I), lambda m: f"quarter:{m[1]}-Q{m[2]}"),
    (re.compile(r"^(?:năm|nam|year)\s*(\d{4})$", re.I), lambda m: f"year:{m[1]}"),  # a bare 2026 stays an error
)


def _quarter_number(text: str) -> int:
    return int(text) if text.isdigit() else ROMAN.index(text.upper()) + 1


def canonical_period(text: str) -> str:
    """The key of a period written either way (`month:2026-09` or "Tháng 9/2026"); unchanged if neither."""
    cleaned = " ".join(text.split())
    if _PATTERN.match(cleaned):
        return cleaned
    for pattern, build in _HUMAN:
        match = pattern.match(cleaned)
        if match:
            return build(match) or text
    return text


def period_label(key: str, lang: str = "vi") -> str:
    """How people name a period: "Tháng 9/2026", "Quý III/2026", "Năm 2026" (or September 2026, Q3 2026,
    Year 2026)."""
    period = parse_period(key)
    year, month0 = divmod(period.first_month, 12)
    if period.kind == "month":
        return f"Tháng {month0 + 1}/{year}" if lang == "vi" else f"{MONTHS_EN[month0]} {year}"
    if period.kind == "quarter":
        return f"Quý {ROMAN[month0 // 3]}/{year}" if lang == "vi" else f"Q{month0 // 3 + 1} {year}"
    return f"Năm {year}" if lang == "vi" else f"Year {year}"


@lru_cache(maxsize=4096)
def parse_period(text: str) -> Period:
    match = _PATTERN.match(text) or _PATTERN.match(canonical_period(text))
    if not match:
        raise PeriodError(f"malformed period {text!r}: use month:YYYY-MM, quarter:YYYY-QN or year:YYYY "
                          "(or Tháng 9/2026, Quý III/2026, Năm 2026, 2026-09)")
    year = int(match.group(1) or match.group(3) or match.group(5))
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise PeriodError(f"period {text!r} is outside the years {EARLIEST_YEAR}-{LATEST_YEAR}")
    if match.group(1):
        return period_at("month", int(match.group(1)) * 12 + int(match.group(2)) - 1)
    if match.group(3):
        return period_at("quarter", int(match.group(3)) * 12 + (int(match.group(4)) - 1) * 3)
    return period_at("year", int(match.group(5)) * 12)


def month_index(moment: int) -> int:
    return _month_of_day((moment + UTC_OFFSET_SECONDS) // DAY)


@lru_cache(maxsize=65536)
def _month_of_day(local_day_number: int) -> int:
    day = date.fromordinal(EPOCH_ORDINAL + local_day_number)
    return day.year * 12 + day.month - 1


PERIOD_KINDS = ("month", "quarter", "year")


def periods_between(start: int, end: int) -> tuple[Period, ...]:
    """Every month, quarter and year period overlapping [start, end]."""
    return _periods_between_months(month_index(start), month_index(end))


@lru_cache(maxsize=4096)
def _periods_between_months(first: int, last: int) -> tuple[Period, ...]:
    found: list[Period] = []
    for kind in PERIOD_KINDS:
        seen = set()
        for index in range(first, last + 1):
            period = period_at(kind, index)
            if period.key not in seen:
                seen.add(period.key)
                found.append(period)
    return tuple(found)


def periods_of(moment: int) -> tuple[Period, Period, Period]:
    return periods_at_month(month_index(moment))


@lru_cache(maxsize=4096)
def periods_at_month(index: int) -> tuple[Period, Period, Period]:
    return period_at("month", index), period_at("quarter", index), period_at("year", index)


@lru_cache(maxsize=4096)
def period_keys_at_month(index: int) -> tuple[str, str, str]:
    month, quarter, year = periods_at_month(index)
    return month.key, quarter.key, year.key
