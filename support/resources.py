"""Reading the project's data files: rulesets and calendar overrides (the I/O the core must not do)."""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path

import orjson

from scoring.calendar import CalendarOverrides, WorkingCalendar
from scoring.ruleset import Ruleset, RulesetError, parse_ruleset

DEFAULT_RULESET = "766-2026.json"


def read_json(path: Path | None, bundled: str) -> dict:
    if path is None:
        return orjson.loads(resources.files("scoring").joinpath(bundled).read_bytes())
    try:
        return orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as error:
        raise RulesetError(f"{path} is not valid JSON: {error}") from error


def load_ruleset(path: Path | None = None) -> Ruleset:
    return parse_ruleset(read_json(path, f"rulesets/{DEFAULT_RULESET}"))


def load_calendar(overrides: Path | None = None) -> WorkingCalendar:
    """The working calendar, with the years around today loaded: the holidays package's first use
    costs a few tenths of a second, which a worker should pay at start, not in its first batch."""
    calendar = WorkingCalendar(CalendarOverrides.from_mapping(read_json(overrides, "data/calendar_overrides.json")))
    this_year = date.today().year
    calendar.load_years(range(this_year - 1, this_year + 2))
    return calendar
