"""The dossier reducer and the on-time rule of DOMAIN.md §3, rule by rule."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import events as ev
from scoring.lifecycle import Outcome, classify, end_time, reduce, turns_overdue_at
from scoring.ruleset import LifecycleSwitches
from tests.builders import received, status, step, supplement_received, supplement_requested, ts, when

DEFAULT = LifecycleSwitches()
DUE = "2026-09-10 17:00"


def state_of(*events):
    state = None
    for event in events:
        state = reduce(state, event)
    return state


def outcome(*events, at: str = "2026-12-31 00:00", switches: LifecycleSwitches = DEFAULT, fallback=None):
    return classify(state_of(*events), ts(at), switches, fallback)


def test_completed_before_the_due_date_is_early():
    assert outcome(received("D", "2026-09-01 09:00", DUE), status("D", "2026-09-09 10:00", 9)) is Outcome.EARLY


def test_completed_on_the_due_date_is_on_time():
    assert outcome(received("D", "2026-09-01 09:00", DUE), status("D", "2026-09-10 16:00", 9)) is Outcome.ON_TIME


def test_completed_after_due_is_late():
    assert outcome(received("D", "2026-09-01 09:00", DUE), status("D", "2026-09-10 17:01", 9)) is Outcome.LATE


def test_end_time_priority_9_over_10_over_8_and_7():
    base = received("D", "2026-09-01 09:00", DUE)
    state = state_of(base, status("D", "2026-09-12 09:00", 10), status("D", "2026-09-09 09:00", 9))
    assert end_time(state, ts("2026-12-31 00:00")) == ts("2026-09-09 09:00")
    state = state_of(base, status("D", "2026-09-12 09:00", 10), status("D", "2026-09-08 09:00", 8))
    assert end_time(state, ts("2026-12-31 00:00")) == ts("2026-09-12 09:00")
    state = state_of(base, status("D", "2026-09-11 09:00", 8), status("D", "2026-09-09 09:00", 7))
    assert end_time(state, ts("2026-12-31 00:00")) == ts("2026-09-09 09:00")
    assert outcome(base, status("D", "2026-09-12 09:00", 10), status("D", "2026-09-09 09:00", 9)) is Outcome.EARLY


def test_withdrawn_before_receipt_is_excluded():
    assert outcome(status("D", "2026-09-01 08:00", 1), status("D", "2026-09-02 08:00", 7)) is Outcome.EXCLUDED


def test_withdrawn_after_receipt_ends_the_dossier():
    assert outcome(received("D", "2026-09-01 09:00", DUE), status("D", "2026-09-11 09:00", 7)) is Outcome.LATE


def test_status_1_and_3_are_not_received_dossiers():
    assert outcome(status("D", "2026-09-01 08:00", 1)) is Outcome.EXCLUDED
    assert outcome(status("D", "2026-09-01 08:00", 1), status("D", "2026-09-01 10:00", 3)) is Outcome.EXCLUDED


def test_supplement_time_is_subtracted():
    # Finished a day after due, but the applicant took two days to supplement.
    events = (received("D", "2026-09-01 09:00", DUE), supplement_requested("D", "2026-09-03 09:00"),
              supplement_received("D", "2026-09-05 09:00"), status("D", "2026-09-11 16:00", 9))
    assert outcome(*events) is Outcome.EARLY


def test_more_than_one_supplement_request_is_late():
    events = (received("D", "2026-09-01 09:00", DUE), supplement_requested("D", "2026-09-02 09:00"),
              supplement_received("D", "2026-09-02 10:00"), supplement_requested("D", "2026-09-03 09:00"),
              supplement_received("D", "2026-09-03 10:00"), status("D", "2026-09-04 09:00", 9))
    assert outcome(*events) is Outcome.LATE
    relaxed = dataclasses.replace(DEFAULT, multiple_supplements_late=False)
    assert outcome(*events, switches=relaxed) is Outcome.EARLY


def test_status_5_counts_as_a_supplement_request():
    events = (received("D", "2026-09-01 09:00", DUE), status("D", "2026-09-03 09:00", 5),
              supplement_received("D", "2026-09-05 09:00"), status("D", "2026-09-11 16:00", 9))
    assert outcome(*events) is Outcome.EARLY


def test_waiting_for_supplement_is_judged_at_the_request_time():
    events = (received("D", "2026-09-01 09:00", DUE), supplement_requested("D", "2026-09-03 09:00"))
    assert outcome(*events, at="2026-10-30 00:00") is Outcome.IN_PROGRESS
    assert turns_overdue_at(state_of(*events), ts("2026-10-01 00:00"), DEFAULT) is None


def test_in_progress_turns_overdue_by_time_alone():
    events = (received("D", "2026-09-01 09:00", DUE),)
    assert outcome(*events, at="2026-09-10 17:00") is Outcome.IN_PROGRESS
    assert outcome(*events, at="2026-09-10 17:00:01") is Outcome.OVERDUE
    assert turns_overdue_at(state_of(*events), ts("2026-09-05 00:00"), DEFAULT) == ts(DUE) + 1


def test_missing_due_uses_the_legal_limit():
    events = (received("D", "2026-09-01 09:00", None), status("D", "2026-09-10 16:00", 9))
    assert outcome(*events, fallback=ts("2026-09-08 09:00")) is Outcome.LATE
    assert outcome(*events, fallback=ts("2026-09-11 09:00")) is Outcome.EARLY


def test_financial_obligation_clock_runs_by_default_and_can_pause():
    events = (received("D", "2026-09-01 09:00", DUE), status("D", "2026-09-02 09:00", 6),
              ev.PaymentMade(event_id="pay", occurred_at=when("2026-09-04 09:00"), dossier_code="D",
                             amount=1, online=True),
              status("D", "2026-09-11 16:00", 9))
    assert outcome(*events) is Outcome.LATE
    paused = dataclasses.replace(DEFAULT, financial_obligation_clock="paused")
    assert outcome(*events, switches=paused) is Outcome.EARLY


def test_reappointed_due_does_not_rescue_a_late_dossier_by_default():
    events = (received("D", "2026-09-01 09:00", DUE),
              ev.DueReappointed(event_id="r", occurred_at=when("2026-09-09 09:00"), dossier_code="D",
                                new_due_at=when("2026-09-15 17:00")),
              status("D", "2026-09-14 09:00", 9))
    assert outcome(*events) is Outcome.LATE
    reappointed = dataclasses.replace(DEFAULT, score_against_due="reappointed")
    assert outcome(*events, switches=reappointed) is Outcome.EARLY
    assert state_of(*events).due_at == ts(DUE), "the original due is kept beside the new one"


def test_timestamp_or_date_comparison_switch():
    events = (received("D", "2026-09-01 09:00", "2026-09-10 09:00"), status("D", "2026-09-10 16:00", 9))
    assert outcome(*events) is Outcome.LATE
    assert outcome(*events, switches=dataclasses.replace(DEFAULT, compare="date")) is Outcome.ON_TIME


def test_classification_as_of_a_past_period_end_ignores_later_events():
    events = (received("D", "2026-09-25 09:00", "2026-10-05 17:00"), status("D", "2026-10-03 09:00", 9))
    assert outcome(*events, at="2026-09-30 23:59:59") is Outcome.IN_PROGRESS
    assert outcome(*events, at="2026-10-31 23:59:59") is Outcome.EARLY


def test_steps_merge_start_and_completion_in_any_order():
    start = step("D", "2026-09-01 10:00", "S1", "O7", "2026-09-01 10:00", "2026-09-02 10:00")
    done = step("D", "2026-09-02 09:00", "S1", "O7", "2026-09-01 10:00", "2026-09-02 10:00", "2026-09-02 09:00")
    assert state_of(start, done) == state_of(done, start)
    assert state_of(done, start).steps["S1"].completed == ts("2026-09-02 09:00")


# --- order independence ---------------------------------------------------------------------------

HISTORY = [
    status("P", "2026-09-01 08:00", 1),
    received("P", "2026-09-01 09:00", DUE, fee=20000),
    ev.PortalSyncAcknowledged(event_id="sync", occurred_at=when("2026-09-01 09:05"), dossier_code="P"),
    status("P", "2026-09-01 10:00", 4),
    step("P", "2026-09-01 10:00", "S1", "O1", "2026-09-01 10:00", "2026-09-03 10:00"),
    supplement_requested("P", "2026-09-02 09:00"),
    supplement_received("P", "2026-09-04 09:00"),
    step("P", "2026-09-05 10:00", "S1", "O1", "2026-09-01 10:00", "2026-09-03 10:00", "2026-09-05 10:00"),
    ev.PaymentMade(event_id="pay", occurred_at=when("2026-09-06 09:00"), dossier_code="P", amount=20000, online=True),
    ev.DigitisationRecorded(event_id="dig", occurred_at=when("2026-09-06 10:00"), dossier_code="P",
                            components_digitised=True, population_data_used=True),
    status("P", "2026-09-09 09:00", 9),
    ev.ResultIssued(event_id="res", occurred_at=when("2026-09-09 09:01"), dossier_code="P", electronic=True),
    status("P", "2026-09-10 09:00", 10),
    ev.DossierRated(event_id="rate1", occurred_at=when("2026-09-11 09:00"), dossier_code="P", rating="satisfied"),
    ev.DossierRated(event_id="rate2", occurred_at=when("2026-09-12 09:00"), dossier_code="P", rating="not_satisfied"),
]


@settings(max_examples=300, deadline=None)
@given(st.permutations(HISTORY), st.lists(st.sampled_from(HISTORY), max_size=8), st.sampled_from(
    ["2026-09-01 09:30", "2026-09-03 00:00", "2026-09-09 12:00", "2026-09-11 00:00", "2026-12-01 00:00"]))
def test_any_order_with_duplicates_gives_the_same_state_and_outcome(order, duplicates, at):
    reference = state_of(*HISTORY)
    shuffled = state_of(*order, *duplicates)
    assert shuffled == reference
    assert classify(shuffled, ts(at), DEFAULT) == classify(reference, ts(at), DEFAULT)
