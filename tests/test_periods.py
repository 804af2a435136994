"""Period keys: parsing, bounds, previous period."""

import pytest

from scoring.periods import PeriodError, parse_period


@pytest.mark.parametrize("text", ["month:0000-01", "year:0000", "quarter:9999-Q4", "month:2026-13", "week:2026-01",
                                  "", "year:26"])
def test_a_malformed_or_out_of_range_period_is_a_period_error(text):
    with pytest.raises(PeriodError):
        parse_period(text)


def test_the_previous_period_is_of_the_same_kind():
    assert parse_period("month:2026-01").previous.key == "month:2025-12"
    assert parse_period("quarter:2026-Q1").previous.key == "quarter:2025-Q4"
    assert parse_period("year:2026").previous.key == "year:2025"
