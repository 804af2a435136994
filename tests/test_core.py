"""The worker core without a broker: what a batch, a watermark, a rebuild and a clock tick make the
worker send where, and the projector's side — including snapshots that arrive out of order."""

from __future__ import annotations

import itertools

import orjson
import pytest

from contracts import messages
from contracts.messages import Control, SourceId, SourceKind, TallySnapshot
from schemas import events as ev
from scoring.alerts import AlertPolicy
from scoring.directory import Directory
from streams.config import DOSSIER_TOPIC
from streams.core import ProjectorCore, WorkerCore
from streams.scorer import RawMessage
from streams.tally_book import TallyBook, key_of
from tests.builders import code_in, received, ts

PARTITIONS = 4
EPOCH = 1_780_000_000_000
D0 = SourceId(SourceKind.DOSSIER, 0)
TOPIC = f"ns.{DOSSIER_TOPIC}"
_offsets = itertools.count()


def message(*events: ev.EventBase | bytes, partition: int = 0) -> RawMessage:
    body = b"[" + b",".join(e if isinstance(e, bytes) else ev.encode(e) for e in events) + b"]"
    return RawMessage(None, body, TOPIC, partition, next(_offsets))


def control(kind: str, as_of: int, token: str, catalog_end: int = 0, partition: int = 0) -> RawMessage:
    body = messages.encode(Control(kind=kind, as_of=as_of, token=token, catalog_end=catalog_end))
    return RawMessage(None, body, TOPIC, partition, next(_offsets), control=True)


def new_core(ruleset, calendar, mode: str = "replay") -> WorkerCore:
    return WorkerCore(PARTITIONS, mode, ruleset, calendar, Directory(), AlertPolicy())


def run(core: WorkerCore, *raw: RawMessage, now: int = 0):
    batch = core.split(SourceKind.DOSSIER, raw)
    for source in core.missing(batch.sources):
        core.restore(source, [], 0, EPOCH)
    return core.process(batch, now, None)


def test_a_batch_becomes_one_plan_per_source_saying_what_goes_where(ruleset, calendar):
    taken: set[str] = set()
    own, foreign = code_in(0, taken), code_in(2, taken)
    core = new_core(ruleset, calendar)
    batch = core.split(SourceKind.DOSSIER, [
        message(received(own, "2026-09-01 09:00", "2026-09-05 17:00"), received(foreign, "2026-09-01 09:05", None),
                b'{"event_type": "dossier.nope"}')])
    assert core.missing(batch.sources) == [D0]
    core.restore(D0, [], 0, EPOCH)
    [plan] = core.process(batch, 0, None)

    assert plan.source == D0 and plan.events == 1
    assert list(plan.state_writes) == [own.encode()]  # the state table: only its own dossier
    assert [orjson.loads(letter)["reason"] for letter in plan.dead_letters] == ["unknown_event_type"]
    assert plan.rejected == {"unknown_event_type": 1}
    assert [(out.topic, out.partition) for out in plan.reroutes] == [(DOSSIER_TOPIC, 2)]  # sent on to its home
    assert [listing.dossier for listing in plan.listings] == [own]
    tally = plan.tally
    assert tally.source == "d0" and tally.seq == (EPOCH, 1) and tally.as_of == ts("2026-09-01 09:00")
    assert tally.replace, "the first snapshot of a (re)built source replaces what the projector had of it"
    assert messages.decode_tally(messages.encode(tally)) == tally

    [later] = run(core, message(received(code_in(0, taken), "2026-09-02 09:00", "2026-09-06 17:00")))
    assert later.tally.seq == (EPOCH, 2) and not later.tally.replace


def test_a_restored_source_sends_all_it_had_once(ruleset, calendar):
    taken: set[str] = set()
    first = new_core(ruleset, calendar)
    [plan] = run(first, message(received(code_in(0, taken), "2026-09-01 09:00", "2026-09-05 17:00")))
    stored = [(code.decode(), value) for code, value in plan.state_writes.items()]

    restarted = new_core(ruleset, calendar)
    restarted.restore(D0, stored, plan.as_of, EPOCH + 5000)  # later, here or on another worker
    [resent] = run(restarted, message(received(code_in(0, taken), "2026-09-01 10:00", "2026-09-05 17:00")))
    assert resent.tally.replace and resent.tally.seq == (EPOCH + 5000, 1) > plan.tally.seq
    assert {(o, p) for o, p, _ in plan.tally.entries} <= {(o, p) for o, p, _ in resent.tally.entries}
    [after] = run(restarted, message(received(code_in(0, taken), "2026-09-01 11:00", "2026-09-05 17:00")))
    assert not after.tally.replace, "only once"


def test_a_watermark_closes_a_replay_source_at_the_history_end(ruleset, calendar):
    taken: set[str] = set()
    core = new_core(ruleset, calendar)
    events = message(received(code_in(0, taken), "2026-09-01 09:00", "2026-09-05 17:00"))
    batch = core.split(SourceKind.DOSSIER, [events, control("watermark", ts("2026-09-30 00:00"), "tok", catalog_end=7)])
    assert batch.catalog_end == 7  # the shell folds the catalogue this far first
    core.restore(D0, [], 0, EPOCH)
    [plan] = core.process(batch, 0, None)
    assert plan.tally.watermark == "tok" and plan.tally.catalog_end == 7
    assert plan.as_of == plan.tally.as_of == ts("2026-09-30 00:00")
    assert [listing.state for listing in plan.listings][-1] == "overdue"  # time passed to the watermark


def test_a_rebuild_resends_every_tally_and_listing_of_the_source(ruleset, calendar):
    taken: set[str] = set()
    core = new_core(ruleset, calendar)
    codes = [code_in(0, taken) for _ in range(3)]
    [first] = run(core, message(*(received(code, "2026-09-01 09:00", "2026-09-05 17:00") for code in codes)))
    [rebuilt] = run(core, control("rebuild", 0, "again"))
    assert rebuilt.tally.replace and rebuilt.tally.watermark == "again"
    assert sorted(rebuilt.tally.entries) == sorted(first.tally.entries)
    assert sorted(listing.dossier for listing in rebuilt.listings) == sorted(codes)


def test_a_watermark_and_a_rebuild_in_one_batch_each_report_their_token(ruleset, calendar):
    taken: set[str] = set()
    core = new_core(ruleset, calendar)
    core.restore(D0, [], 0, EPOCH)
    run(core, message(received(code_in(0, taken), "2026-09-01 09:00", "2026-09-05 17:00")))
    [plan] = run(core, control("watermark", ts("2026-09-30 00:00"), "replay"), control("rebuild", 0, "rebuild"))
    assert plan.tally.watermark == "rebuild" and plan.tally.replace
    [closing] = plan.closes
    assert closing.watermark == "replay" and closing.entries == [] and not closing.replace
    assert closing.seq > plan.tally.seq and closing.as_of == plan.tally.as_of == ts("2026-09-30 00:00")


def test_a_control_message_that_does_not_decode_is_a_dead_letter_and_the_batch_goes_on(ruleset, calendar):
    taken: set[str] = set()
    core = new_core(ruleset, calendar)
    broken = RawMessage(None, b"not json", TOPIC, 0, 99, control=True)
    [plan] = run(core, message(received(code_in(0, taken), "2026-09-01 09:00", None)), broken)
    assert plan.events == 1 and plan.rejected == {"invalid_control": 1}
    letter = orjson.loads(plan.dead_letters[0])
    assert (letter["reason"], letter["offset"], letter["raw_bytes"]) == ("invalid_control", 99, 8)
    assert "raw" not in letter and letter["raw_withheld"], "a message that is not JSON keeps only its hash"


def test_a_replay_worker_does_not_tick_and_a_live_one_sends_what_time_changed(ruleset, calendar):
    taken: set[str] = set()
    replaying, live = new_core(ruleset, calendar), new_core(ruleset, calendar, "live")
    for core in (replaying, live):
        run(core, message(received(code_in(0, taken), "2026-09-01 09:00", "2026-09-02 17:00")),
            now=ts("2026-09-01 10:00"))
    assert replaying.tick(ts("2026-09-10 00:00")) == []
    [plan] = live.tick(ts("2026-09-10 00:00"))
    assert plan.tally.seq == (EPOCH, 2) and [listing.state for listing in plan.listings] == ["overdue"]
    assert live.tick(ts("2026-09-10 00:00")) == [], "nothing changed since"


# --- ordering: a tick's snapshot overtaking a batch's -----------------------------------------


def book_of(ruleset, calendar) -> ProjectorCore:
    return ProjectorCore(TallyBook(ruleset, calendar, Directory()), score_every=1.0)


def test_a_batch_snapshot_that_arrives_after_a_newer_tick_snapshot_leaves_no_stale_counter(ruleset, calendar):
    """Live mode: `handle` builds a batch's snapshot and waits on Redis; meanwhile `tick` lets time
    pass, the dossier turns overdue, and its newer snapshot reaches the projector first. The older
    one arriving after it must not put the on-time counters back."""
    taken: set[str] = set()
    core = new_core(ruleset, calendar, "live")
    code = code_in(0, taken)
    [from_handle] = run(core, message(received(code, "2026-09-01 09:00", "2026-09-02 17:00")),
                        now=ts("2026-09-02 16:00"))  # on time so far
    [from_tick] = core.tick(ts("2026-09-03 09:00"))  # past its due: overdue
    assert from_tick.tally.seq > from_handle.tally.seq
    by_entry = {(owner, period): counters for owner, period, counters in from_tick.tally.entries}
    overtaken = [(owner, period) for owner, period, counters in from_handle.tally.entries
                 if (owner, period) in by_entry and by_entry[(owner, period)] != counters]
    assert overtaken, "the two snapshots disagree on some entry: the race has something to break"

    projector = book_of(ruleset, calendar)
    tick_plan = projector.apply([messages.encode(from_tick.tally)], 100.0)
    late_plan = projector.apply([messages.encode(from_handle.tally)], 100.1)  # the older one, after

    # What the source has now, counted from scratch, is what the book holds.
    expected = {(owner, period): dict(counters) for (owner, period), counters in core.scorers[D0].engine.pairs.items()
                if counters}
    book = projector.book
    assert {(owner, period): counters for (_, owner, period), counters in book.entries.items()} == expected
    for owner, period in overtaken:
        assert book.entries[("d0", owner, period)] == by_entry[(owner, period)]
        assert key_of(("d0", owner, period)) not in {k.decode() for k in late_plan.table_writes}

    # The book read back from its table knows the sequence numbers too.
    table = {**tick_plan.table_writes, **late_plan.table_writes}
    reloaded = book_of(ruleset, calendar)
    reloaded.load((key, value) for key, value in table.items() if value is not None)
    reloaded.apply([messages.encode(from_handle.tally)], 200.0)
    assert reloaded.book.entries == book.entries


def snapshot(seq: int, entries, replace: bool = False, as_of: int = 10) -> bytes:
    return messages.encode(TallySnapshot(source="d0", seq=(EPOCH, seq), as_of=as_of, entries=entries,
                                         replace=replace))


def test_an_entry_a_newer_snapshot_emptied_stays_empty_and_a_replace_drops_only_older_entries(ruleset, calendar):
    projector = book_of(ruleset, calendar)
    projector.apply([snapshot(2, [("U", "month:2026-09", {}), ("U", "month:2026-10", {"n": 1})])], 1.0)
    projector.apply([snapshot(1, [("U", "month:2026-09", {"n": 5})])], 1.0)  # older: the tombstone wins
    assert projector.book.owners("month:2026-09") == {}

    projector.apply([snapshot(4, [("V", "month:2026-09", {"n": 2})])], 1.0)  # newer than the replace below
    projector.apply([snapshot(3, [("W", "month:2026-09", {"n": 3})], replace=True)], 1.0)
    assert projector.book.owners("month:2026-09") == {"V": {"n": 2}, "W": {"n": 3}}
    assert projector.book.owners("month:2026-10") == {}, "older than the replace and not in it"
    projector.apply([snapshot(2, [("X", "month:2026-09", {"n": 9})])], 1.0)  # below the floor
    assert "X" not in projector.book.owners("month:2026-09")


def test_a_tally_table_written_before_sequence_numbers_still_loads(ruleset, calendar):
    projector = book_of(ruleset, calendar)
    projector.load([(key_of(("d0", "U", "month:2026-09")).encode(), orjson.dumps({"n": 4})),
                    (key_of(("d0", "", "")).encode(), orjson.dumps({"as_of": 77}))])
    assert projector.book.owners("month:2026-09") == {"U": {"n": 4}} and projector.as_of == 77
    projector.apply([snapshot(1, [("U", "month:2026-09", {"n": 5})])], 1.0)
    assert projector.book.owners("month:2026-09") == {"U": {"n": 5}}


def test_the_projector_coalesces_scoring_and_scores_at_once_for_a_watermark(ruleset, calendar):
    projector = book_of(ruleset, calendar)
    projector.apply([snapshot(1, [("U", "month:2026-09", {"n": 1})])], 100.0)
    assert projector.due_periods(100.0) == ["month:2026-09"]  # never scored: due at once
    projector.apply([snapshot(2, [("U", "month:2026-10", {"n": 1})])], 100.2)
    assert projector.due_periods(100.5) == [], "within score_every of the last scoring: wait"
    assert projector.due_periods(101.1) == ["month:2026-10"]
    closing = TallySnapshot(source="d0", seq=(EPOCH, 3), as_of=20, entries=[], watermark="tok", catalog_end=5)
    plan = projector.apply([messages.encode(closing), b"garbage"], 101.2)
    assert plan.tokens == [("tok", "d0", 20)] and plan.catalog_end == 5 and plan.ignored == 1
    assert projector.due_periods(101.2, force=True) == ["month:2026-09", "month:2026-10"]  # every period


def test_a_closing_rescores_every_period_even_if_the_timer_took_them_first(ruleset, calendar):
    """The shell waits for the catalogue between applying a closing snapshot and scoring for it;
    the timer may score the pending periods in that gap, on a catalogue not yet complete."""
    projector = book_of(ruleset, calendar)
    closing = TallySnapshot(source="d0", seq=(EPOCH, 1), as_of=20, entries=[("U", "month:2026-09", {"n": 1})],
                            watermark="tok", catalog_end=5)
    projector.apply([messages.encode(closing)], 100.0)
    assert projector.due_periods(100.0) == ["month:2026-09"]  # the timer, during the catalogue wait
    assert projector.due_periods(100.1, force=True) == ["month:2026-09"]  # the closing's own, after it


@pytest.mark.parametrize("mode", ["live", "replay"])
def test_sequence_numbers_grow_per_source_whoever_builds_the_snapshot(ruleset, calendar, mode):
    taken: set[str] = set()
    core = new_core(ruleset, calendar, mode)
    seqs = []
    for hour in range(9, 13):
        [plan] = run(core, message(received(code_in(0, taken), f"2026-09-01 {hour:02}:00", "2026-09-01 15:00")),
                     now=ts(f"2026-09-01 {hour:02}:30"))
        seqs.append(plan.tally.seq)
        seqs += [tick.tally.seq for tick in core.tick(ts(f"2026-09-01 {hour:02}:45"))]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
