"""The working calendar and legal due dates (DOMAIN.md §4).

Times are epoch seconds; Vietnam keeps one offset (UTC+7, no daylight saving), so local dates and
clock times come from that fixed offset. Holidays come from the maintained `holidays` package
(lunar Tết and Hùng Kings, substituted days off, make-up working Saturdays) plus an override mapping
for decisions the package does not know yet.
"""

from __future__ import annotations

import calendar as _calendar
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Literal

import holidays

UTC_OFFSET_SECONDS = 7 * 3600  # Vietnam: UTC+7 all year, no daylight saving
VIETNAM = timezone(timedelta(seconds=UTC_OFFSET_SECONDS), "ICT")
DAY = 86400
LimitUnit = Literal["hours", "days", "working_days", "months"]


def local(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, VIETNAM)


def local_day(ts: int) -> int:
    """The local calendar day of an instant as a day number (days since 1970-01-01 in Vietnam):
    integer arithmetic, for comparisons on hot paths where a `date` would cost a datetime."""
    return (ts + UTC_OFFSET_SECONDS) // DAY


def iso(moment: float | None) -> str | None:
    """ISO-8601 in Vietnam time of epoch seconds (whole seconds), or None."""
    return local(int(moment)).isoformat() if moment is not None else None


EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()


def at(day: date, minute_of_day: int) -> int:
    """Epoch seconds of a local date and minute of day (integer arithmetic: one fixed offset)."""
    return (day.toordinal() - EPOCH_ORDINAL) * DAY - UTC_OFFSET_SECONDS + minute_of_day * 60


def day_and_second(ts: int) -> tuple[date, int]:
    """The local date of an instant and the second of that day."""
    days, second = divmod(int(ts) + UTC_OFFSET_SECONDS, DAY)
    return date.fromordinal(days + EPOCH_ORDINAL), second


def parse_hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class WorkingHours:
    """An agency's working windows (minutes of the day) and its same-day receipt cut-off."""

    windows: tuple[tuple[int, int], ...] = ((7 * 60 + 30, 11 * 60 + 30), (13 * 60 + 30, 17 * 60))
    receipt_cutoff: int = 15 * 60
    # Derived once: due dates ask for it several times each.
    minutes_per_day: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        previous_end = 0
        for start, end in self.windows:
            if not previous_end <= start < end <= 24 * 60:
                raise ValueError(f"working windows must be ordered and non-overlapping: {self.windows}")
            previous_end = end
        if not self.windows:
            raise ValueError("an agency needs at least one working window")
        object.__setattr__(self, "minutes_per_day", sum(end - start for start, end in self.windows))

    @classmethod
    def from_text(cls, windows: Iterable[tuple[str, str]] | None, cutoff: str | None) -> WorkingHours:
        if not windows and not cutoff:
            return STANDARD_HOURS  # one shared object: calendar memos find it by identity
        default = STANDARD_HOURS
        parsed = tuple((parse_hhmm(a), parse_hhmm(b)) for a, b in windows) if windows else default.windows
        hours = cls(parsed, parse_hhmm(cutoff) if cutoff else default.receipt_cutoff)
        return STANDARD_HOURS if hours == STANDARD_HOURS else hours

    @property
    def opening(self) -> int:
        return self.windows[0][0]

    @property
    def closing(self) -> int:
        return self.windows[-1][1]


STANDARD_HOURS = WorkingHours()


@dataclass(frozen=True)
class CalendarOverrides:
    """Per-year decisions the holiday library does not know: extra days off, make-up working days."""

    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()

    @classmethod
    def from_mapping(cls, data: Mapping) -> CalendarOverrides:
        days_off: set[date] = set()
        working: set[date] = set()
        for year, entry in data.get("years", {}).items():
            for bucket, target in (("days_off", days_off), ("working_days", working)):
                for item in entry.get(bucket, []):
                    day = date.fromisoformat(item["date"])
                    if str(day.year) != str(year):
                        raise ValueError(f"override {day} is filed under year {year}")
                    target.add(day)
        clash = days_off & working
        if clash:
            raise ValueError(f"dates both off and working in the override file: {sorted(clash)}")
        return cls(frozenset(days_off), frozenset(working))


MEMO_LIMIT = 200_000  # entries; a full memo starts over rather than grow with every dossier seen
# The years the `holidays` package computes Vietnam's holidays for, lunar ones included. Event
# instants are limited to 2000-2100 at decode; only a due date computed from a long time limit can
# fall after 2100, and such days count as Monday-Friday working days with no holidays.
HOLIDAY_YEARS = range(1990, 2101)


@dataclass
class WorkingCalendar:
    """Monday–Friday minus public holidays, plus official make-up working days (DOMAIN.md §4).
    A year's holidays are computed the first time a day of it is asked for."""

    overrides: CalendarOverrides = field(default_factory=CalendarOverrides)

    def __post_init__(self) -> None:
        self._holidays: set[date] = set()
        self._make_up: set[date] = set()
        self._years: set[int] = set()
        self._cache: dict[date, bool] = {}
        # Alert plans ask for the same instants again each time a dossier is touched, and a dossier's
        # legal due is asked for each time its findings are.
        self._before: dict[tuple[int, float, int], int] = {}
        self._dues: dict[tuple[int, float, str, int], int] = {}
        # The memos key working hours by identity (hashing the dataclass costs more than a hit saves);
        # the objects are kept here, so an id is never mistaken for a newer object's.
        self._hours: dict[int, WorkingHours] = {}
        self._ordinals: dict[int, list[int]] = {}

    def _load_year(self, year: int) -> None:
        self._years.add(year)
        if year not in HOLIDAY_YEARS:
            return
        base = holidays.country_holidays("VN", years=year)
        overrides = self.overrides
        self._holidays.update(day for day in base if day not in overrides.working_days)
        self._make_up.update(day for day in getattr(base, "weekend_workdays", ()) if day not in overrides.days_off)
        self._holidays.update(day for day in overrides.days_off if day.year == year)
        self._make_up.update(day for day in overrides.working_days if day.year == year)

    @property
    def loaded_years(self) -> frozenset[int]:
        return frozenset(self._years)

    def load_years(self, years: Iterable[int]) -> None:
        """Compute these years' holidays now rather than on first use."""
        for year in years:
            if year not in self._years:
                self._load_year(year)

    def is_working_day(self, day: date) -> bool:
        cached = self._cache.get(day)
        if cached is None:
            if day.year not in self._years:
                self._load_year(day.year)
            cached = day in self._make_up or (day.weekday() < 5 and day not in self._holidays)
            self._cache[day] = cached
        return cached

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def working_day_on_or_after(self, day: date) -> date:
        return day if self.is_working_day(day) else self.next_working_day(day)

    def add_working_days(self, day: date, count: int) -> date:
        return self.nth_working_day_after(day, count) if count > 0 else day

    def nth_working_day_after(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (count >= 1), in one step per year rather than
        one per day: a due fifteen working days out was most of the cost of a dossier's findings."""
        year, after = day.year, day.toordinal()
        while year <= HOLIDAY_YEARS[-1]:
            days = self._working_ordinals(year)
            position = bisect_right(days, after)
            if position + count <= len(days):
                return date.fromordinal(days[position + count - 1])
            count -= len(days) - position
            year += 1
            after = date(year, 1, 1).toordinal() - 1
        # Past the holiday years every Monday to Friday is a working day: weeks in closed form, so
        # a tiny working window and a long limit cannot walk millions of days.
        day = date.fromordinal(after)
        weeks, extra = divmod(count - 1, 5)
        day = self.next_working_day(day) + timedelta(weeks=weeks)
        for _ in range(extra):
            day = self.next_working_day(day)
        return day

    def _working_ordinals(self, year: int) -> list[int]:
        """The working days of a year in order, as day ordinals (built on first use)."""
        days = self._ordinals.get(year)
        if days is None:
            first = date(year, 1, 1).toordinal()
            last = date(year, 12, 31).toordinal()
            days = self._ordinals[year] = [
                ordinal for ordinal in range(first, last + 1) if self.is_working_day(date.fromordinal(ordinal))]
        return days

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (negative when end is earlier)."""
        if end < start:
            return -self.working_days_between(end, start)
        return sum(self.is_working_day(start + timedelta(days=i)) for i in range(1, (end - start).days + 1))

    # --- instants -------------------------------------------------------------------------------

    def clock_start(self, received_at: int, hours: WorkingHours = STANDARD_HOURS) -> int:
        """When the legal clock starts: received after the cut-off or on a rest day → next working day."""
        day, second = day_and_second(received_at)
        minute = second // 60
        # "After 15:00": 15:00:00 itself is still the same day's receipt.
        if not self.is_working_day(day) or second > hours.receipt_cutoff * 60 or minute >= hours.closing:
            return at(self.next_working_day(day), hours.opening)
        for start, end in hours.windows:
            if minute < end:
                return max(received_at, at(day, start))
        return at(self.next_working_day(day), hours.opening)  # pragma: no cover - cut-off precedes close

    def add_working_minutes(self, start: int, minutes: float, hours: WorkingHours = STANDARD_HOURS) -> int:
        """The instant `minutes` of working time after `start` (which should lie in working time)."""
        remaining = round(minutes * 60)
        per_day = hours.minutes_per_day * 60
        day, second = day_and_second(start)
        if not self.is_working_day(day):
            day, second = self.working_day_on_or_after(day), 0
        while True:
            for window_start, window_end in hours.windows:
                lo, hi = window_start * 60, window_end * 60
                if second >= hi:
                    continue
                begin = max(second, lo)
                if remaining <= hi - begin:
                    return at(day, 0) + begin + remaining
                remaining -= hi - begin
                second = hi
            # `day` is used up. Whole working days are skipped in one step, the limit ending at the
            # close of its last working day when it is a whole number of them.
            whole_days, remaining = divmod(remaining, per_day)
            if not remaining:
                whole_days, remaining = whole_days - 1, per_day
            day, second = self.nth_working_day_after(day, whole_days + 1), 0

    def subtract_working_minutes(self, end: int, minutes: float, hours: WorkingHours = STANDARD_HOURS) -> int:
        """The instant that lies `minutes` of working time before `end`."""
        key = (end, minutes, self._hours_id(hours))
        found = self._before.get(key)
        if found is None:
            if len(self._before) >= MEMO_LIMIT:
                self._before.clear()
            found = self._before[key] = self._subtract_working_minutes(end, minutes, hours)
        return found

    def _hours_id(self, hours: WorkingHours) -> int:
        """An id for memo keys, and the memos forgotten should an id ever come back for other hours.
        Values stay plain ints, so the memos add no objects for the garbage collector to walk."""
        key = id(hours)
        known = self._hours.get(key)
        if known is not hours:
            if known is not None:
                self._before.clear()
                self._dues.clear()
            self._hours[key] = hours
        return key

    def _subtract_working_minutes(self, end: int, minutes: float, hours: WorkingHours) -> int:
        remaining = round(minutes * 60)
        day, second = day_and_second(end)
        if not self.is_working_day(day):
            day, second = self._previous_working_day(day), 24 * 3600
        while True:
            for window_start, window_end in reversed(hours.windows):
                lo, hi = window_start * 60, window_end * 60
                if second <= lo:
                    continue
                finish = min(second, hi)
                if remaining <= finish - lo:
                    return at(day, 0) + finish - remaining
                remaining -= finish - lo
                second = lo
            day, second = self._previous_working_day(day), 24 * 3600

    def _previous_working_day(self, day: date) -> date:
        day -= timedelta(days=1)
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def working_minutes_between(self, start: int, end: int, hours: WorkingHours = STANDARD_HOURS,
                                at_most: int | None = None) -> int:
        """Working minutes in [start, end); negative when end is before start. With `at_most`, the
        count stops soon after passing it (a due decades away need not be walked day by day to
        know it is not within two working days)."""
        if end < start:
            return -self.working_minutes_between(end, start, hours)
        total = 0
        day = local(start).date()
        last = local(end).date()
        limit = None if at_most is None else (at_most + 1) * 60
        while day <= last and (limit is None or total <= limit):
            if self.is_working_day(day):
                for window_start, window_end in hours.windows:
                    lo = max(start, at(day, window_start))
                    hi = min(end, at(day, window_end))
                    if hi > lo:
                        total += hi - lo
            day += timedelta(days=1)
        return total // 60

    def close_of_working_day(self, day: date, hours: WorkingHours = STANDARD_HOURS) -> int:
        """Close of `day`, or of the next working day when it is a rest day (Civil Code art. 148(5))."""
        return at(self.working_day_on_or_after(day), hours.closing)

    def due_at(self, received_at: int, value: float, unit: LimitUnit,
               hours: WorkingHours = STANDARD_HOURS) -> int:
        """The legal due instant of a dossier received at `received_at` with a time limit."""
        key = (received_at, value, unit, self._hours_id(hours))
        found = self._dues.get(key)
        if found is None:
            if len(self._dues) >= MEMO_LIMIT:
                self._dues.clear()
            found = self._dues[key] = self._due_at(received_at, value, unit, hours)
        return found

    def _due_at(self, received_at: int, value: float, unit: LimitUnit, hours: WorkingHours) -> int:
        if value <= 0:
            raise ValueError(f"a time limit must be positive, got {value} {unit}")
        start = self.clock_start(received_at, hours)
        if unit == "hours":
            return self.add_working_minutes(start, value * 60, hours)
        if unit == "working_days":
            return self.add_working_minutes(start, value * hours.minutes_per_day, hours)
        start_day = local(start).date()
        if unit == "days":
            return self.close_of_working_day(start_day + timedelta(days=math.ceil(value)), hours)
        if unit == "months":
            return self.close_of_working_day(add_months(start_day, math.ceil(value)), hours)
        raise ValueError(f"unknown time-limit unit {unit!r}")


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))
