"""Contributions, pooling, catalogue and procedure indicators, officers, stakes and ranking."""

from __future__ import annotations

from datetime import date

import pytest

from schemas import events as ev
from scoring.engine import Engine
from scoring.periods import parse_period
from scoring.ranking import competition_ranks
from scoring.stakes import points_at_stake, stakes_along
from tests.builders import procedure, received, status, step, ts, unit, when

REGISTRY = [unit("H15", "province"), unit("H15.01", "agency", "H15"), unit("H15.02", "agency", "H15"),
            unit("H15.X01", "commune", "H15", e_copy=True), unit("H15.X02", "commune", "H15")]


def scored(ruleset, calendar, events, period="month:2026-09", at="2026-09-30 23:59:59"):
    engine = Engine(ruleset, calendar)
    engine.load([*REGISTRY, *events])
    return {u.code: u for u in engine.score_units(parse_period(period), ts(at))}, engine


def on_time(code, unit_code="H15.01", day=1, **kwargs):
    return [received(code, f"2026-09-{day:02d} 09:00", f"2026-09-{day + 5:02d} 17:00", unit=unit_code, **kwargs),
            status(code, f"2026-09-{day + 2:02d} 09:00", 9)]


def late(code, unit_code="H15.02", day=1, **kwargs):
    return [received(code, f"2026-09-{day:02d} 09:00", f"2026-09-{day + 1:02d} 17:00", unit=unit_code, **kwargs),
            status(code, f"2026-09-{day + 4:02d} 09:00", 9)]


def test_province_pools_numerators_and_denominators_never_averages(ruleset, calendar):
    events = [*on_time("A1"), *late("B1"), *late("B2", day=2), *late("B3", day=3)]
    units, _ = scored(ruleset, calendar, events)
    assert units["H15.01"].counts["ON_TIME"] == (1, 1)
    assert units["H15.02"].counts["ON_TIME"] == (0, 3)
    assert units["H15"].counts["ON_TIME"] == (1, 4)
    assert float(units["H15"].card.indicators["ON_TIME"]) == 5.0  # the average of 20 and 0 would be 10


def test_carry_over_dossiers_count_in_every_period_they_are_open(ruleset, calendar):
    events = [received("C1", "2026-09-25 09:00", "2026-10-05 17:00"), status("C1", "2026-10-03 09:00", 9),
              received("C2", "2026-08-20 09:00", "2026-08-28 17:00"),
              received("C3", "2026-08-03 09:00", "2026-08-10 17:00"), status("C3", "2026-08-07 09:00", 9)]
    september, _ = scored(ruleset, calendar, events, "month:2026-09", "2026-10-15 12:00")
    october, _ = scored(ruleset, calendar, events, "month:2026-10", "2026-10-15 12:00")
    # September: C1 in progress within due, C2 carried over and overdue; C3 closed in August.
    assert september["H15.01"].counts["ON_TIME"] == (1, 2)
    assert september["H15.01"].counts["DOSSIER_SYNC"] == (0, 1), "received-basis counts only C1"
    assert october["H15.01"].counts["ON_TIME"] == (1, 2)
    assert "DOSSIER_SYNC" not in october["H15.01"].counts
    assert october["H15.01"].outcomes["out.overdue"] == 1


def test_procedure_indicators_count_distinct_procedures(ruleset, calendar):
    catalogue = [procedure("P1", ["H15.01"]), procedure("P2", ["H15.01"]), procedure("P3", ["H15.01"], online=False)]
    events = [*catalogue, *on_time("D1", procedure="P1"), *on_time("D2", procedure="P1", day=3),
              *on_time("D3", procedure="P3", day=4, channel=1)]
    units, _ = scored(ruleset, calendar, events)
    assert units["H15.01"].counts["ONLINE_SERVICE_USED"] == (1, 2)
    assert units["H15.01"].counts["ONLINE_PROVISION"] == (2, 3)
    assert units["H15"].counts["ONLINE_SERVICE_USED"] == (1, 2)


def test_catalogue_indicators_are_the_provinces_and_children_show_them(ruleset, calendar):
    catalogue = [
        procedure("P1", ["H15.01"], decision_date=date(2026, 9, 1), legal_effective_date=date(2026, 9, 15),
                  published_at=when("2026-09-03 10:00"), content_parts_present=7),
        procedure("P2", ["H15.02"], decision_date=date(2026, 9, 10), legal_effective_date=date(2026, 9, 11),
                  published_at=when("2026-09-25 10:00"), content_parts_present=5),
    ]
    units, _ = scored(ruleset, calendar, catalogue)
    for code in ("H15", "H15.01", "H15.X02"):
        assert units[code].counts["PUBLISH_ON_TIME"] == (1, 2)
        assert units[code].counts["PUBLIC_UPDATE_ON_TIME"] == (1, 2)
        assert units[code].counts["PUBLIC_CONTENT_FULL"] == (1, 2)


def test_electronic_certified_copy_counts_communes(ruleset, calendar):
    units, _ = scored(ruleset, calendar, [])
    assert units["H15"].counts["ELECTRONIC_CERTIFIED_COPY"] == (1, 2)
    assert float(units["H15.01"].card.indicators["ELECTRONIC_CERTIFIED_COPY"]) == 2  # not applicable
    assert float(units["H15.X02"].card.indicators["ELECTRONIC_CERTIFIED_COPY"]) == 0


def test_received_basis_indicators(ruleset, calendar):
    events = [
        *on_time("D1", fee=10000),
        ev.PaymentMade(event_id="p", occurred_at=when("2026-09-02 09:00"), dossier_code="D1", amount=1, online=True),
        ev.PortalSyncAcknowledged(event_id="s", occurred_at=when("2026-09-01 09:10"), dossier_code="D1"),
        ev.DigitisationRecorded(event_id="g", occurred_at=when("2026-09-01 10:00"), dossier_code="D1",
                                components_digitised=True, reused_digitised_data=True, population_data_used=True),
        *on_time("D2", day=4, channel=1),
    ]
    counts = scored(ruleset, calendar, events)[0]["H15.01"].counts
    assert counts["DOSSIER_SYNC"] == (1, 2)
    assert counts["ONLINE_DOSSIER_SHARE"] == (1, 2)
    assert counts["PAY_DOSSIER_ONLINE"] == (1, 1)
    assert counts["SO_HOA_GIAY_TO_GIAI_QUYET"] == (1, 2)
    assert counts["REUSED_DIGITIZED_DATA"] == (1, 2)
    assert counts["CITIZEN_DATA_CONNECTED_DOSSIER"] == (1, 2)


def test_satisfaction_loses_late_unhappy_and_petitioned_dossiers(ruleset, calendar):
    events = [
        *on_time("D1"), *on_time("D2", day=2), *on_time("D3", day=3), *late("D4", unit_code="H15.01"),
        ev.DossierRated(event_id="r", occurred_at=when("2026-09-05 09:00"), dossier_code="D2", rating="not_satisfied"),
        ev.PetitionReceived(event_id="pk", occurred_at=when("2026-09-06 09:00"), petition_id="PK1", unit_code="H15.01",
                            about="procedure", received_at=when("2026-09-06 09:00"), dossier_code="D3"),
    ]
    counts = scored(ruleset, calendar, events)[0]["H15.01"].counts
    assert counts["DOSSIER_RECEIVING_SATISFACTION"] == (1, 4)
    assert counts["PETITION_CLASSIFICATION_TTHC"] == (1, 1)


def test_petition_timeliness_and_zero_over_zero(ruleset, calendar):
    def petition(pid, received_at):
        return ev.PetitionReceived(event_id=f"{pid}r", occurred_at=when(received_at), petition_id=pid,
                                   unit_code="H15.02", about="officer", received_at=when(received_at))
    events = [petition("A", "2026-09-01 09:00"),
              ev.PetitionAnswered(event_id="Aa", occurred_at=when("2026-09-10 09:00"), petition_id="A"),
              petition("B", "2026-09-01 09:00"),
              ev.PetitionAnswered(event_id="Ba", occurred_at=when("2026-09-29 09:00"), petition_id="B"),
              petition("C", "2026-09-25 09:00")]
    units, _ = scored(ruleset, calendar, events)
    assert units["H15.02"].counts["PETITION_PROCESSING_ON_TIME"] == (2, 3)  # B answered after 15 working days
    assert units["H15.02"].counts["PETITION_HANDLING_SATISFACTION"] == (2, 3)
    assert float(units["H15.01"].card.indicators["PETITION_PROCESSING_ON_TIME"]) == 6  # none: full marks


def test_officer_tallies_and_the_points_they_cost(ruleset, calendar):
    from scoring.rollup import officer_tallies, split_by_owner

    events = [
        received("D1", "2026-09-01 09:00", "2026-09-03 17:00"),
        step("D1", "2026-09-02 09:00", "S1", "O1", "2026-09-01 09:00", "2026-09-02 09:00", "2026-09-01 15:00"),
        step("D1", "2026-09-04 09:00", "S2", "O2", "2026-09-01 15:00", "2026-09-03 09:00", "2026-09-04 09:00"),
        status("D1", "2026-09-04 10:00", 9),
        received("D2", "2026-09-20 09:00", "2026-09-22 17:00"),
        step("D2", "2026-09-20 09:00", "S1", "O3", "2026-09-20 09:00", "2026-09-21 09:00"),
        *on_time("D3", day=5),
    ]
    units, engine = scored(ruleset, calendar, events)
    owners = split_by_owner(engine.full_tallies(ts("2026-09-30 23:59:59")), "month:2026-09")
    tallies = {t.officer: t for t in officer_tallies(owners, list(units.values()), ruleset)}
    assert tallies["O1"].counters["steps_on_time"] == 1
    assert tallies["O2"].counters["steps_late"] == 1 and tallies["O2"].counters["late_completed"] == 1
    assert tallies["O3"].counters["overdue_held"] == 1 and tallies["O3"].counters["steps_open_late"] == 1
    assert units["H15.01"].counts["ON_TIME"] == (1, 3)
    # Had D1 been on time: ON_TIME 2/3 instead of 1/3 → 13.33 − 6.67 = 6.66, satisfaction 4.44 − 2.22.
    assert float(tallies["O2"].points_cost) == pytest.approx(6.66 + 2.22)


def test_points_at_stake(ruleset, calendar):
    assert float(points_at_stake({"ON_TIME": (10, 10), "DOSSIER_RECEIVING_SATISFACTION": (10, 10)}, ruleset)) == 2.0
    assert float(points_at_stake({"ON_TIME": (99, 100)}, ruleset)) == 0.2
    events = [*on_time("A1", day=1), received("OPEN", "2026-09-20 09:00", "2026-10-05 17:00"), *late("B1")]
    units, _ = scored(ruleset, calendar, events)
    stakes = stakes_along(("H15.01", "H15"), {code: u.counts for code, u in units.items()}, ruleset)
    # ON_TIME 2/2 → 1/2 loses 10; satisfaction 2/2 → 1/2 (target 0.9) goes 6 → 3.33, losing 2.67.
    assert float(stakes["H15.01"]) == 12.67
    assert stakes["H15"] < stakes["H15.01"], "a larger pool loses less per dossier"


def test_competition_ranking_with_ties():
    assert competition_ranks([80, 95, 80, 70, 95]) == [3, 1, 3, 5, 1]
    assert competition_ranks([]) == []


def test_units_rank_within_their_peer_group(ruleset, calendar):
    events = [*on_time("A1"), *late("B1")]
    units, _ = scored(ruleset, calendar, events)
    assert units["H15.01"].peer_group == "agencies:H15" and units["H15.X01"].peer_group == "communes:H15"
    assert units["H15.01"].rank == 1 and units["H15.02"].rank == 2
    assert units["H15"].rank == 1 and units["H15"].peer_group == "provinces"
    assert {units["H15.X01"].rank, units["H15.X02"].rank} == {1, 2}
