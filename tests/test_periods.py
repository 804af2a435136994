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


@pytest.mark.parametrize(("written", "key", "vi", "en"), [
    ("Tháng 9/2026", "month:2026-09", "Tháng 9/2026", "September 2026"),
    ("tháng 09/2026", "month:2026-09", "Tháng 9/2026", "September 2026"),
    ("2026-09", "month:2026-09", "Tháng 9/2026", "September 2026"),
    ("Quý III/2026", "quarter:2026-Q3", "Quý III/2026", "Q3 2026"),
    ("Q4/2026", "quarter:2026-Q4", "Quý IV/2026", "Q4 2026"),
    ("Năm 2026", "year:2026", "Năm 2026", "Year 2026"),
    ("month:2026-10", "month:2026-10", "Tháng 10/2026", "October 2026"),
])
def test_periods_as_people_write_them(written, key, vi, en):
    from scoring.periods import period_label

    assert parse_period(written).key == key
    assert period_label(key) == vi and period_label(key, "en") == en


@pytest.mark.parametrize("written", ["13/2026", "Quý V/2026", "Tháng/2026", "2026-13", "2026"])
def test_impossible_human_periods_are_errors(written):
    with pytest.raises(PeriodError):
        parse_period(written)
