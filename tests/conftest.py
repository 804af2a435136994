from __future__ import annotations

import pytest

from cli.resources import load_calendar, load_ruleset
from scoring.calendar import WorkingCalendar
from scoring.ruleset import Ruleset


@pytest.fixture(scope="session")
def ruleset() -> Ruleset:
    return load_ruleset()


@pytest.fixture(scope="session")
def calendar() -> WorkingCalendar:
    return load_calendar()
