from __future__ import annotations

import pytest

from scoring.calendar import WorkingCalendar
from scoring.ruleset import Ruleset
from support.resources import load_calendar, load_ruleset


@pytest.fixture(scope="session")
def ruleset() -> Ruleset:
    return load_ruleset()


@pytest.fixture(scope="session")
def calendar() -> WorkingCalendar:
    return load_calendar()
