"""Incremental tallies (what a streaming worker keeps) equal a full recomputation (the batch scorer)."""

from __future__ import annotations

import random

import pytest

from schemas import decode
from schemas import events as ev
from scoring.engine import Engine
from support.simulate import Simulator
from tests.builders import received, status, ts


@pytest.fixture(scope="module")
def history(calendar):
    return [decode(line) for line in Simulator(11, 1500, calendar=calendar, days=120).events()]


def nonzero(counter):
    return {key: value for key, value in counter.items() if value}


def run_incremental(ruleset, calendar, events, batch_sizes):
    engine = Engine(ruleset, calendar)
    position = 0
    rng = random.Random(3)
    while position < len(events):
        size = rng.choice(batch_sizes)
        engine.apply_batch(events[position:position + size])
        position += size
    return engine


def test_incremental_tallies_equal_a_full_recomputation(ruleset, calendar, history):
    engine = run_incremental(ruleset, calendar, history, [1, 7, 50, 500])
    assert engine.as_of == engine.latest_event_at
    assert nonzero(engine.tallies) == nonzero(engine.full_tallies(engine.as_of))


def test_duplicates_and_shuffles_within_a_dossier_change_nothing(ruleset, calendar, history):
    reference = run_incremental(ruleset, calendar, history, [200])
    rng = random.Random(5)
    noisy = list(history)
    noisy += rng.sample(history, len(history) // 10)  # redeliveries
    by_dossier: dict[str, list[int]] = {}
    for index, event in enumerate(noisy):
        if isinstance(event, ev.DossierEvent):
            by_dossier.setdefault(event.dossier_code, []).append(index)
    for positions in by_dossier.values():  # shuffle each dossier's events among its own slots
        shuffled = [noisy[i] for i in positions]
        rng.shuffle(shuffled)
        for slot, event in zip(positions, shuffled, strict=True):
            noisy[slot] = event
    engine = run_incremental(ruleset, calendar, noisy, [1, 64, 300])
    assert engine.as_of == reference.as_of
    assert nonzero(engine.tallies) == nonzero(reference.tallies)


def test_time_alone_turns_a_dossier_overdue(ruleset, calendar):
    engine = Engine(ruleset, calendar)
    engine.apply_batch([received("D", "2026-09-01 09:00", "2026-09-03 17:00")])
    assert engine.tallies[("H15.01", "month:2026-09", "ON_TIME.n")] == 1
    changed = engine.apply_batch([], as_of=ts("2026-09-04 08:00"))
    assert ("H15.01", "month:2026-09") in changed
    assert engine.tallies.get(("H15.01", "month:2026-09", "ON_TIME.n"), 0) == 0
    assert engine.tallies[("H15.01", "month:2026-09", "out.overdue")] == 1
    assert engine.apply_batch([], as_of=ts("2026-09-05 08:00")) == set(), "the flip happens once"
    assert ("H15.01", "month:2026-10") not in engine.pairs
    changed = engine.apply_batch([], as_of=ts("2026-10-01 00:00"))
    assert ("H15.01", "month:2026-10") in changed
    assert engine.tallies[("H15.01", "month:2026-10", "ON_TIME.d")] == 1, "carried over into the new month"


def test_a_late_catalogue_change_rebuilds_consistently(ruleset, calendar):
    from tests.builders import procedure, unit

    engine = Engine(ruleset, calendar)
    engine.apply_batch([received("D", "2026-09-01 09:00", None), status("D", "2026-09-09 09:00", 9)])
    assert engine.tallies[("H15.01", "month:2026-09", "ON_TIME.n")] == 1  # no due known: not judged late
    engine.apply_batch([unit("H15.01", "agency"), procedure("P1", ["H15.01"], limit=(3, "working_days"))])
    assert engine.tallies[("H15.01", "month:2026-09", "ON_TIME.n")] == 0  # legal limit: due 4 Sep
    assert nonzero(engine.tallies) == nonzero(engine.full_tallies(engine.as_of))


def test_a_dossier_raises_approaching_apology_and_overdue_alerts_once(ruleset, calendar):
    from scoring.alerts import AlertPolicy
    from scoring.calendar import local

    engine = Engine(ruleset, calendar, alert_policy=AlertPolicy())
    engine.apply_batch([received("A", "2026-09-07 09:00", "2026-09-10 17:00")])
    assert engine.alerts == []
    for moment in ("2026-09-09 07:29", "2026-09-09 07:30", "2026-09-09 17:00", "2026-09-10 11:00",
                   "2026-09-10 17:00", "2026-09-10 17:01", "2026-09-11 09:00"):
        engine.apply_batch([], as_of=ts(moment))
    raised = [(alert.kind, local(alert.at).strftime("%m-%d %H:%M")) for alert in engine.alerts]
    assert raised == [("approaching", "09-09 07:30"), ("apology_due", "09-10 07:30"),
                      ("approaching", "09-10 11:00"), ("overdue", "09-10 17:00")]
    assert len({alert.alert_id for alert in engine.alerts}) == 4


def test_no_alert_for_a_dossier_completed_in_time(ruleset, calendar):
    from scoring.alerts import AlertPolicy

    engine = Engine(ruleset, calendar, alert_policy=AlertPolicy())
    engine.apply_batch([received("B", "2026-09-07 09:00", "2026-09-10 17:00"), status("B", "2026-09-08 09:00", 9)])
    engine.apply_batch([], as_of=ts("2026-09-20 09:00"))
    assert engine.alerts == []
