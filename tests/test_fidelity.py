"""Real data is messier than the simulator: legal-but-odd events, rule gaps, and the data-quality
findings they leave (issue: fidelity on real data). One named test per case."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import msgspec
import orjson
import pytest

from schemas import Rejection, decode, decode_message
from schemas import events as ev
from scoring.calendar import WorkingCalendar
from scoring.engine import Engine
from scoring.lifecycle import Outcome, classify, reduce, transition_problems
from scoring.periods import parse_period
from scoring.quality import dossier_findings
from tests.builders import procedure, received, status, supplement_received, supplement_requested, ts, unit, when

REGISTRY = [unit("H15", "province"), unit("H15.01", "agency", "H15"), unit("H15.02", "agency", "H15")]
LATE_2026 = "2026-12-31 23:00"


def engine_with(ruleset, calendar, events) -> Engine:
    engine = Engine(ruleset, calendar)
    engine.load([*REGISTRY, *events])
    return engine


def units_of(ruleset, calendar, events, period="month:2026-09", at="2026-09-30 23:59:59"):
    engine = engine_with(ruleset, calendar, events)
    return {u.code: u for u in engine.score_units(parse_period(period), ts(at))}


def state_of(*events):
    state = None
    for event in events:
        state = reduce(state, event)
    return state


def raw(**fields) -> bytes:
    base = {"event_id": "x1", "occurred_at": "2026-09-01T09:00:00+07:00", "dossier_code": "D1"}
    return orjson.dumps({**base, **fields})


# --- 1. nothing schema-valid crashes a run --------------------------------------------------------


def test_dossier_received_in_2014_is_scored(ruleset, calendar):
    events = [received("OLD", "2014-03-03 09:00", None, limit=(5, "working_days")),
              status("OLD", "2014-03-05 09:00", 9)]
    units = units_of(ruleset, calendar, events, "year:2014", "2014-12-31 23:00")
    assert units["H15.01"].counts["ON_TIME"] == (1, 1)


def test_petition_received_in_2012_and_procedure_decided_in_2010_are_scored(ruleset, calendar):
    petition = ev.PetitionReceived(event_id="p", occurred_at=when("2012-05-02 09:00"), petition_id="PA",
                                   unit_code="H15.01", about="procedure", received_at=when("2012-05-02 09:00"))
    decided = procedure("P-2010", ["H15.01"], decision_date=date(2010, 1, 4), legal_effective_date=date(2010, 2, 1),
                        published_at=when("2010-01-06 09:00"))
    engine = engine_with(ruleset, calendar, [petition, decided])
    assert engine.score_units(parse_period("year:2012"), ts("2012-12-31 23:00"))
    units = {u.code: u for u in engine.score_units(parse_period("year:2010"), ts("2010-12-31 23:00"))}
    assert units["H15"].counts["PUBLISH_ON_TIME"] == (1, 1)


def test_a_due_computed_past_2100_does_not_crash(ruleset, calendar):
    events = [received("FAR", "2100-06-01 09:00", None, limit=(120, "months"))]
    units = units_of(ruleset, calendar, events, "year:2100", "2100-12-31 23:00")
    assert units["H15.01"].counts["ON_TIME"] == (1, 1)


def test_a_time_limit_over_ten_years_is_rejected_at_decode():
    rejection = decode(raw(event_type="dossier.received", unit_code="U", procedure_code="P", channel=1,
                           received_at="2026-09-01T09:00:00+07:00", time_limit={"value": 3650, "unit": "months"}))
    assert isinstance(rejection, Rejection) and rejection.reason == "invalid_value"
    assert "ten years" in rejection.detail


def test_a_fee_past_any_real_amount_is_rejected_at_decode():
    rejection = decode(raw(event_type="dossier.payment_made", amount=0, online=True).replace(b'"amount":0',
                                                                                          b'"amount":' + b"9" * 40))
    assert isinstance(rejection, Rejection) and rejection.path == "$.amount"


def test_working_hours_that_end_before_they_start_are_rejected_at_decode():
    rejection = decode(orjson.dumps({"event_type": "unit.upserted", "event_id": "u",
                                     "occurred_at": "2026-01-01T00:00:00Z", "unit_code": "H15.09", "name": "x",
                                     "level": "agency",
                                     "working_hours": [["17:00", "07:30"]]}))
    assert isinstance(rejection, Rejection) and rejection.path == "$.working_hours"


def test_json_nested_too_deep_is_a_rejection_not_a_recursion_error():
    for message in (b"[" * 100_000 + b"]" * 100_000, b'[{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}]"):
        [rejection] = decode_message(message)
        assert isinstance(rejection, Rejection) and rejection.reason == "not_json"


# --- 2. one bad event moves no clock and erases no history -----------------------------------------


def test_an_event_from_the_future_is_rejected_and_does_not_move_as_of():
    now = ts("2026-09-15 12:00")
    typo = raw(event_type="dossier.status_changed", status=9, occurred_at="2099-09-15T12:00:00+07:00")
    [rejection] = decode_message(typo, now + 600)
    assert isinstance(rejection, Rejection) and rejection.reason == "future_time" and rejection.path == "$.occurred_at"
    ahead = raw(event_type="dossier.received", unit_code="U", procedure_code="P", channel=1,
                received_at="2026-09-20T09:00:00+07:00")
    assert decode_message(ahead, now + 600)[0].reason == "future_time"  # type: ignore[union-attr]
    within_tolerance = raw(event_type="dossier.status_changed", status=4, occurred_at="2026-09-15T12:05:00+07:00")
    assert isinstance(decode_message(within_tolerance, now + 600)[0], ev.DossierStatusChanged)


@pytest.mark.parametrize("offset", ["+07:00", "Z", "-05:30", "+14:00"])
def test_the_future_check_compares_instants_whatever_zone_an_instant_is_written_in(offset):
    # FutureCheck keeps its limit per zone to compare like with like; the answer must be the one a
    # comparison of instants gives, one second either side of the limit, with the fact field in
    # another zone than occurred_at.
    limit = ts("2026-09-15 12:00")
    check = ev.FutureCheck(limit)
    for seconds, future in ((0, False), (1, True)):
        moment = datetime.fromtimestamp(limit + seconds, timezone(_offset(offset))).isoformat()
        [late] = decode_message(raw(event_type="dossier.status_changed", status=4, occurred_at=moment))
        assert (check.first_future_field(late) == "occurred_at") is future  # type: ignore[arg-type]
        [receipt] = decode_message(raw(event_type="dossier.received", unit_code="U", procedure_code="P", channel=1,
                                       occurred_at="2026-09-15T10:00:00+07:00", received_at=moment))
        assert (check.first_future_field(receipt) == "received_at") is future  # type: ignore[arg-type]


def _offset(text: str) -> timedelta:
    if text == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))


def test_a_due_date_in_the_future_is_not_from_the_future():
    message = raw(event_type="dossier.received", unit_code="U", procedure_code="P", channel=1,
                  received_at="2026-09-15T09:00:00+07:00", due_at="2026-10-15T17:00:00+07:00")
    assert isinstance(decode_message(message, ts("2026-09-15 12:00"))[0], ev.DossierReceived)


def test_status_3_after_receipt_is_reported_and_keeps_the_dossier(ruleset, calendar):
    events = [received("R3", "2026-09-01 09:00", "2026-09-03 17:00"), status("R3", "2026-09-10 09:00", 9),
              status("R3", "2026-09-12 09:00", 3)]
    units = units_of(ruleset, calendar, events)
    assert units["H15.01"].counts["ON_TIME"] == (0, 1), "the late dossier stays in the denominator"
    assert units["H15.01"].findings == {"refused_after_receipt": 1}


def test_a_processing_status_after_the_end_is_reported_and_does_not_reopen(ruleset, calendar):
    events = [received("R4", "2026-09-01 09:00", "2026-09-10 17:00"), status("R4", "2026-09-05 09:00", 9),
              status("R4", "2026-09-20 09:00", 4)]
    state = state_of(*events)
    assert transition_problems(state) == ("status_after_end",)
    assert classify(state, ts(LATE_2026), ruleset.lifecycle) is Outcome.EARLY


def test_a_status_change_for_a_dossier_never_received_is_reported(ruleset, calendar):
    state = state_of(status("ORPHAN", "2026-09-05 09:00", 9))
    assert transition_problems(state) == ("never_received",)
    assert transition_problems(state_of(status("S", "2026-09-05 09:00", 1), status("S", "2026-09-06 09:00", 3))) == ()


def test_a_supplement_sent_as_status_5_and_as_an_event_is_one_request(ruleset):
    due = "2026-09-10 17:00"
    one_request = [received("S1", "2026-09-01 09:00", due), status("S1", "2026-09-03 09:00", 5),
                   supplement_requested("S1", "2026-09-03 09:01"), supplement_received("S1", "2026-09-07 09:00"),
                   status("S1", "2026-09-12 09:00", 9)]
    # Four days waiting for the applicant are taken out: finished within the due.
    assert classify(state_of(*one_request), ts(LATE_2026), ruleset.lifecycle) in (Outcome.EARLY, Outcome.ON_TIME)


def test_two_requests_with_a_supplement_between_are_two_and_late(ruleset):
    events = [received("S2", "2026-09-01 09:00", "2026-09-20 17:00"), supplement_requested("S2", "2026-09-02 09:00"),
              supplement_received("S2", "2026-09-03 09:00"), status("S2", "2026-09-04 09:00", 5),
              supplement_received("S2", "2026-09-05 09:00"), status("S2", "2026-09-08 09:00", 9)]
    assert classify(state_of(*events), ts(LATE_2026), ruleset.lifecycle) is Outcome.LATE


def test_a_dossier_with_no_due_at_all_is_reported_as_cannot_be_judged(ruleset, calendar):
    units = units_of(ruleset, calendar, [received("N1", "2026-09-01 09:00", None, procedure="UNLISTED")])
    assert units["H15.01"].findings == {"no_due": 1}
    assert units["H15"].findings == {"no_due": 1}, "findings pool up the tree like the counts"


@pytest.mark.parametrize("field", ["dossier_code", "unit_code", "procedure_code", "officer_id"])
@pytest.mark.parametrize("bad", ["H15|01", "H15\x1f01", "H15\n01"])
def test_codes_holding_key_separators_are_rejected_at_decode(field, bad):
    message = orjson.dumps({"event_type": "dossier.received", "event_id": "x", "occurred_at": "2026-09-01T09:00:00Z",
                            "dossier_code": "D1", "unit_code": "U", "procedure_code": "P", "channel": 1,
                            "received_at": "2026-09-01T09:00:00Z", "officer_id": "O", field: bad})
    for item in (decode_message(message)[0], decode_message(b"[" + message + b"]")[0]):
        assert isinstance(item, Rejection) and item.reason == "unusable_code" and item.path == f"$.{field}"


def test_an_empty_array_line_is_reported():
    [rejection] = decode_message(b"[]")
    assert isinstance(rejection, Rejection) and rejection.reason == "empty_array"


def test_a_receipt_at_exactly_15_00_is_not_after_15_00(calendar: WorkingCalendar):
    assert calendar.clock_start(ts("2026-09-08 15:00:00")) == ts("2026-09-08 15:00:00")
    assert calendar.clock_start(ts("2026-09-08 15:00:01")) == ts("2026-09-09 07:30")


# --- 3. indicators that counted the wrong dossiers -------------------------------------------------


def test_1_1_to_1_3_count_procedures_under_a_provincial_agency_for_the_province(ruleset, calendar):
    agency_procedure = procedure("PA", ["H15.01"], authority="H15.01", decision_date=date(2026, 9, 1),
                                 legal_effective_date=date(2026, 9, 30), published_at=when("2026-09-03 09:00"),
                                 content_parts_present=7)
    units = units_of(ruleset, calendar, [agency_procedure])
    for code in ("H15", "H15.01", "H15.02"):
        assert units[code].counts["PUBLISH_ON_TIME"] == (1, 1)
        assert units[code].counts["PUBLIC_CONTENT_FULL"] == (1, 1)


def test_4_1_counts_completed_dossiers_of_document_procedures_without_a_result_event(ruleset, calendar):
    catalogue = [procedure("DOC", ["H15.01"]), procedure("NODOC", ["H15.01"], returns_document=False)]
    electronic = ev.ResultIssued(event_id="r", occurred_at=when("2026-09-03 09:05"), dossier_code="E1", electronic=True)
    events = [*catalogue, received("E1", "2026-09-01 09:00", "2026-09-08 17:00", procedure="DOC"),
              status("E1", "2026-09-03 09:00", 9), electronic,
              received("E2", "2026-09-01 09:00", "2026-09-08 17:00", procedure="DOC"),
              status("E2", "2026-09-03 09:00", 9),
              received("E3", "2026-09-01 09:00", "2026-09-08 17:00", procedure="NODOC"),
              status("E3", "2026-09-03 09:00", 9)]
    assert units_of(ruleset, calendar, events)["H15.01"].counts["ORIGINAL_RESULT_AVAILABLE"] == (1, 2)


def test_4_2_a_procedure_returning_no_document_needs_no_result_digitisation(ruleset, calendar):
    catalogue = [procedure("NODOC", ["H15.01"], returns_document=False)]
    events = [*catalogue, received("G1", "2026-09-01 09:00", "2026-09-08 17:00", procedure="NODOC"),
              ev.DigitisationRecorded(event_id="g", occurred_at=when("2026-09-01 10:00"), dossier_code="G1",
                                      components_digitised=True),
              ev.ResultIssued(event_id="gr", occurred_at=when("2026-09-03 09:00"), dossier_code="G1", electronic=False,
                              returns_document=False)]
    assert units_of(ruleset, calendar, events)["H15.01"].counts["SO_HOA_GIAY_TO_GIAI_QUYET"] == (1, 1)


def test_3_6_a_fee_set_after_receipt_and_paid_online_counts(ruleset, calendar):
    events = [received("F1", "2026-09-01 09:00", "2026-09-08 17:00", fee=0),
              ev.FinancialObligationRequested(event_id="f", occurred_at=when("2026-09-02 09:00"), dossier_code="F1",
                                              amount=150_000),
              ev.PaymentMade(event_id="fp", occurred_at=when("2026-09-02 10:00"), dossier_code="F1", amount=150_000,
                             online=True)]
    assert units_of(ruleset, calendar, events)["H15.01"].counts["PAY_DOSSIER_ONLINE"] == (1, 1)


def test_5_4_a_rating_after_the_completion_month_rescores_that_month(ruleset, calendar):
    rating = ev.DossierRated(event_id="rt", occurred_at=when("2026-10-05 09:00"), dossier_code="H1",
                             rating="not_satisfied")
    events = [received("H1", "2026-09-01 09:00", "2026-09-08 17:00"), status("H1", "2026-09-03 09:00", 9), rating]
    before = units_of(ruleset, calendar, events, at="2026-10-01 00:00")
    after = units_of(ruleset, calendar, events, at="2026-10-06 00:00")
    assert before["H15.01"].counts["DOSSIER_RECEIVING_SATISFACTION"] == (1, 1)
    assert after["H15.01"].counts["DOSSIER_RECEIVING_SATISFACTION"] == (0, 1)


def _petition(kind: type, at: str, petition_id: str = "PA") -> ev.PetitionEvent:
    return kind(event_id=f"{petition_id}-{kind.__name__}-{at}", occurred_at=when(at), petition_id=petition_id)


def _petition_on_time(ruleset, calendar, *events) -> tuple[int, int]:
    received_event = ev.PetitionReceived(event_id="pr", occurred_at=when("2026-09-01 09:00"), petition_id="PA",
                                         unit_code="H15.01", about="procedure", received_at=when("2026-09-01 09:00"))
    units = units_of(ruleset, calendar, [received_event, *events], at="2026-09-30 23:00")
    return units["H15.01"].counts["PETITION_PROCESSING_ON_TIME"]


def test_petition_refused_after_2_working_days_is_late(ruleset, calendar):
    assert _petition_on_time(ruleset, calendar, _petition(ev.PetitionRefused, "2026-09-03 09:00")) == (1, 1)
    assert _petition_on_time(ruleset, calendar, _petition(ev.PetitionRefused, "2026-09-07 09:00")) == (0, 1)


def test_petition_first_supplement_request_after_5_working_days_is_late(ruleset, calendar):
    answered = _petition(ev.PetitionAnswered, "2026-09-15 09:00")
    on_time = _petition(ev.PetitionSupplementRequested, "2026-09-04 09:00")
    late = _petition(ev.PetitionSupplementRequested, "2026-09-10 09:00")
    assert _petition_on_time(ruleset, calendar, on_time, answered) == (1, 1)
    assert _petition_on_time(ruleset, calendar, late, answered) == (0, 1)


def test_petition_published_more_than_2_working_days_after_waiting_is_late(ruleset, calendar):
    waiting = _petition(ev.PetitionAwaitingPublication, "2026-09-08 09:00")
    answered = _petition(ev.PetitionAnswered, "2026-09-08 09:00")
    assert _petition_on_time(ruleset, calendar, answered, waiting,
                             _petition(ev.PetitionPublished, "2026-09-09 09:00")) == (1, 1)
    assert _petition_on_time(ruleset, calendar, answered, waiting,
                             _petition(ev.PetitionPublished, "2026-09-14 09:00")) == (0, 1)
    assert _petition_on_time(ruleset, calendar, answered, waiting) == (0, 1), "never published, past its deadline"


def _reappointed(code: str, at: str, new_due: str, apology: str | None) -> ev.DueReappointed:
    return ev.DueReappointed(event_id=f"{code}-ra-{at}", occurred_at=when(at), dossier_code=code,
                             new_due_at=when(new_due), apology_sent_at=when(apology) if apology else None)


def test_an_apology_less_than_a_working_day_before_due_is_reported(ruleset, calendar):
    base = received("AP", "2026-09-01 09:00", "2026-09-10 17:00")
    timely = state_of(base, _reappointed("AP", "2026-09-09 09:00", "2026-09-15 17:00", "2026-09-09 09:00"))
    late = state_of(base, _reappointed("AP", "2026-09-10 09:00", "2026-09-15 17:00", "2026-09-10 09:00"))
    missing = state_of(base, _reappointed("AP", "2026-09-09 09:00", "2026-09-15 17:00", None))
    directory = engine_with(ruleset, calendar, []).directory
    assert "apology_late" not in dossier_findings(timely, directory, calendar)
    assert "apology_late" in dossier_findings(late, directory, calendar)
    assert "apology_late" in dossier_findings(missing, directory, calendar)


def test_a_due_reappointed_twice_is_reported(ruleset, calendar):
    state = state_of(received("AP2", "2026-09-01 09:00", "2026-09-10 17:00"),
                     _reappointed("AP2", "2026-09-08 09:00", "2026-09-15 17:00", "2026-09-08 09:00"),
                     _reappointed("AP2", "2026-09-14 09:00", "2026-09-20 17:00", "2026-09-14 09:00"))
    directory = engine_with(ruleset, calendar, []).directory
    assert "reappointed_twice" in dossier_findings(state, directory, calendar)


def test_a_due_later_than_the_legal_limit_is_reported(ruleset, calendar):
    catalogue = procedure("P5", ["H15.01"], limit=(5, "working_days"))
    beyond = received("DL", "2026-09-01 09:00", "2026-09-30 17:00", procedure="P5")
    within = received("DW", "2026-09-01 09:00", "2026-09-08 09:00", procedure="P5")
    units = units_of(ruleset, calendar, [catalogue, beyond, within])
    assert units["H15.01"].findings == {"due_beyond_limit": 1}


def test_orphan_dossiers_and_petitions_are_listed_unattributed(ruleset, calendar):
    from scoring.quality import check_units

    orphan_petition = _petition(ev.PetitionAnswered, "2026-09-05 09:00", petition_id="PX")
    engine = engine_with(ruleset, calendar, [status("ORPHAN", "2026-09-05 09:00", 9), orphan_petition])
    period = parse_period("month:2026-09")
    units = engine.score_units(period, ts("2026-09-30 23:00"))
    [check] = check_units(engine.dossiers.values(), [], period, ts("2026-09-30 23:00"), engine.context, units,
                          engine.petitions.values())
    assert check.code == "(unattributed)" and check.problems["never_received"].dossiers == ["ORPHAN", "PX"]


def test_an_array_of_many_bad_elements_is_one_summarised_rejection_beside_its_valid_events():
    good = raw(event_type="dossier.status_changed", status=4)
    items = decode_message(b"[" + b",".join([b"{}"] * 200_000 + [good]) + b"]")
    assert [type(item).__name__ for item in items] == ["DossierStatusChanged", "Rejection"]
    assert items[1].reason == "bad_array"  # type: ignore[union-attr]
    assert "200,000 of 200,001 elements refused (missing_event_type 200,000)" in items[1].detail  # type: ignore[union-attr]


def test_a_one_minute_working_window_and_the_longest_limit_take_no_time_to_compute(calendar):
    from scoring.calendar import WorkingHours, local

    tiny = WorkingHours(((8 * 60, 8 * 60 + 1),))
    due = calendar.due_at(ts("2026-09-01 08:00"), 20_000, "hours", tiny)  # 1.2 million working days
    assert local(due).year > 6000  # computed in closed form past 2100, not walked day by day
    assert calendar.working_minutes_between(ts("2026-09-01 08:00"), due, tiny, at_most=900) > 900


def test_two_different_records_under_one_event_id_resolve_the_same_in_any_order(ruleset, calendar):
    first = received("DUP", "2026-09-01 09:00", "2026-09-08 17:00", unit="H15.01")
    second = msgspec.structs.replace(first, unit_code="H15.02")
    one, other = state_of(first, second), state_of(second, first)
    assert one.unit == other.unit and one.received == other.received
    unit_a = msgspec.structs.replace(REGISTRY[1], parent="H15.02")
    parents = set()
    for order in ((REGISTRY[1], unit_a), (unit_a, REGISTRY[1])):
        engine = Engine(ruleset, calendar)
        engine.load(order)
        parents.add(engine.directory.units["H15.01"].parent)
    assert len(parents) == 1


def test_a_processing_status_between_two_ends_is_reported(ruleset):
    events = [received("R5", "2026-10-01 09:00", "2026-10-10 17:00"), status("R5", "2026-10-06 09:00", 9),
              status("R5", "2026-10-07 09:00", 4), status("R5", "2026-10-08 09:00", 10)]
    assert transition_problems(state_of(*events)) == ("status_after_end",)
    after_end = [received("R6", "2026-10-01 09:00", "2026-10-10 17:00"), status("R6", "2026-10-06 09:00", 9),
                 supplement_requested("R6", "2026-10-07 09:00"), status("R6", "2026-10-08 09:00", 10)]
    assert transition_problems(state_of(*after_end)) == ("status_after_end",)


def test_an_end_dated_before_the_receipt_is_reported(ruleset):
    events = [received("R7", "2026-10-05 09:00", "2026-10-10 17:00"), status("R7", "2026-10-01 09:00", 9)]
    assert transition_problems(state_of(*events)) == ("ended_before_receipt",)


@pytest.mark.parametrize("orphan", [
    ev.DossierRated(event_id="o1", occurred_at=when("2026-09-05 09:00"), dossier_code="O", rating="satisfied"),
    supplement_received("O", "2026-09-05 09:00"),
    ev.DueReappointed(event_id="o3", occurred_at=when("2026-09-05 09:00"), dossier_code="O",
                      new_due_at=when("2026-09-20 17:00")),
])
def test_any_fact_of_a_dossier_never_received_is_reported(orphan):
    assert transition_problems(state_of(orphan)) == ("never_received",)


def test_re_appointments_without_a_due_date_are_still_checked(ruleset, calendar):
    state = state_of(received("AP3", "2026-09-01 09:00", None, limit=(5, "working_days")),
                     _reappointed("AP3", "2026-09-08 09:00", "2026-09-15 17:00", None),
                     _reappointed("AP3", "2026-09-14 09:00", "2026-09-20 17:00", None))
    found = dossier_findings(state, engine_with(ruleset, calendar, []).directory, calendar)
    assert "reappointed_twice" in found and "apology_late" in found


def test_4_2_asks_for_a_digitised_result_exactly_when_4_1_asks_for_an_electronic_one(ruleset, calendar):
    catalogue = [procedure("DOC", ["H15.01"])]
    events = [*catalogue, received("K1", "2026-09-01 09:00", "2026-09-08 17:00", procedure="DOC"),
              ev.DigitisationRecorded(event_id="k", occurred_at=when("2026-09-01 10:00"), dossier_code="K1",
                                      components_digitised=True),
              status("K1", "2026-09-03 09:00", 10)]
    counts = units_of(ruleset, calendar, events)["H15.01"].counts
    assert counts["ORIGINAL_RESULT_AVAILABLE"] == (0, 1)
    assert counts["SO_HOA_GIAY_TO_GIAI_QUYET"] == (0, 1), "completed with no digitised result"


def test_a_flood_of_one_dossiers_events_keeps_the_earliest_and_costs_no_quadratic_time(ruleset):
    from scoring.lifecycle import MAX_TIMES

    base = received("FL", "2026-09-01 09:00", "2026-09-30 17:00")
    requests = [supplement_requested("FL", f"2026-09-02 {hour:02d}:{minute:02d}") for hour in range(8, 18)
                for minute in range(60)]
    forward, backward = state_of(base, *requests), state_of(base, *reversed(requests))
    assert forward.supplement_requests == backward.supplement_requests
    assert len(forward.supplement_requests) == MAX_TIMES and forward.supplement_requests[0] == ts("2026-09-02 08:00")


def test_an_online_payment_of_nothing_is_no_online_payment(ruleset, calendar):
    catalogue = [procedure("FEE", ["H15.01"], fee=True)]
    events = [*catalogue, received("Z1", "2026-09-01 09:00", "2026-09-08 17:00", procedure="FEE"),
              ev.PaymentMade(event_id="z", occurred_at=when("2026-09-02 09:00"), dossier_code="Z1", amount=0,
                             online=True)]
    assert units_of(ruleset, calendar, events)["H15.01"].counts["PAY_FORMALITY_WITH_ONLINE_TX"] == (0, 1)
