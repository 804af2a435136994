"""The worker's core, free of Faust, Kafka and Redis: raw messages in, plain plans out.

`WorkerCore` keeps one `SourceScorer` per input partition and the watermark / rebuild protocol; for a
batch (or a live clock tick) it returns one `SourcePlan` per source saying what to write and send,
and in which order. `ProjectorCore` keeps the projector's `TallyBook` and decides when periods are
scored. Both are synchronous and read no clock: the shell (`streams.app`) passes the time in,
performs the plans, and awaits what must be awaited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import orjson

from contracts.messages import (
    Control,
    Seq,
    SourceId,
    SourceKind,
    TallyEntry,
    TallySnapshot,
    decode_control,
    decode_tally,
)
from schemas import Rejection
from scoring.alerts import Alert, AlertPolicy
from scoring.calendar import WorkingCalendar
from scoring.directory import Directory
from scoring.rollup import OfficerTally, UnitScore
from scoring.ruleset import Ruleset
from streams.partitioning import Outgoing
from streams.scorer import BatchResult, DeadLetter, Listing, RawMessage, SourceScorer, rerouted_messages
from streams.tally_book import TallyBook

FULL_RESCORE_SECONDS = 10.0  # live mode: every period is rescored this often as the clock moves


@dataclass
class SourcePlan:
    """What one source's batch (or clock tick) makes the worker do, in this order:

    1. `state_writes` into the source's state table: its store, and its changelog partition;
    2. `dead_letters` to the dead-letter topic, then `reroutes` to their topics and partitions;
    3. one Redis pipeline: `listings`, `alerts`, the source's clock (`as_of`), then `rejected` counts;
    4. once that pipeline is done, `tally` (if any) to the tally topic — after the lists, so a replay
       whose watermark got through has them all — then `closes`, in order;
    5. the changelog deliveries of step 1, awaited before the batch's events are acknowledged.

    The plans of one batch do steps 1–2 one source after the other, then 3–5 together."""

    source: SourceId
    as_of: int
    state_writes: dict[bytes, bytes] = field(default_factory=dict)
    dead_letters: list[bytes] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # reason → dead letters of this plan
    reroutes: list[Outgoing] = field(default_factory=list)
    listings: list[Listing] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    tally: TallySnapshot | None = None
    # The tokens of the batch's other controls, each a snapshot of its own after `tally` (which holds
    # all they close): a replay's watermark and a rebuild in one batch both report.
    closes: list[TallySnapshot] = field(default_factory=list)
    events: int = 0  # valid events folded


@dataclass
class Batch:
    """A consumed batch of one input topic, split by source: its events and its control messages."""

    messages: dict[SourceId, list[RawMessage]] = field(default_factory=dict)
    controls: dict[SourceId, list[Control]] = field(default_factory=dict)
    bad_controls: dict[SourceId, list[DeadLetter]] = field(default_factory=dict)

    @property
    def sources(self) -> list[SourceId]:
        return sorted(self.messages.keys() | self.controls.keys() | self.bad_controls.keys())

    @property
    def catalog_end(self) -> int:
        """The catalogue offset its watermarks / rebuilds need folded before they close."""
        return max((control.catalog_end for controls in self.controls.values() for control in controls), default=0)


class WorkerCore:
    """The input side: every source partition this worker has scored, in one process."""

    def __init__(self, partitions: int, mode: Literal["live", "replay"], ruleset: Ruleset,
                 calendar: WorkingCalendar, directory: Directory, policy: AlertPolicy):
        self.partitions, self.mode = partitions, mode
        self.ruleset, self.calendar, self.directory, self.policy = ruleset, calendar, directory, policy
        self.scorers: dict[SourceId, SourceScorer] = {}
        self._epochs: dict[SourceId, int] = {}
        self._restored: dict[SourceId, list[TallyEntry]] = {}  # all of a restored source's tallies, to send once
        self._sent: dict[SourceId, int] = defaultdict(int)  # snapshots built per source

    # --- sources ---------------------------------------------------------------------------------

    def missing(self, sources: Iterable[SourceId]) -> list[SourceId]:
        """The sources this worker has no scorer for yet: each must be `restore`d first."""
        return [source for source in sources if source not in self.scorers]

    def restore(self, source: SourceId, stored: Iterable[tuple[str, bytes]], as_of: int, epoch: int) -> None:
        """Build the source's scorer from its state table (entity code → state) and saved clock; its
        next plan sends all its tallies, replacing what the projector had of it. `epoch`: when this
        happened (epoch milliseconds), the first half of the source's sequence numbers from now on,
        so the snapshots of a source restored later (here or on another worker) are all newer."""
        scorer = SourceScorer(source, self.partitions, self.ruleset, self.calendar, self.directory, self.policy,
                              max(self.policy.approaching_minutes))
        self._restored[source] = scorer.restore(stored, as_of)
        self.scorers[source] = scorer
        self._epochs[source] = epoch
        self._sent[source] = 0

    # --- a batch ---------------------------------------------------------------------------------

    def split(self, kind: SourceKind, messages: Iterable[RawMessage]) -> Batch:
        batch = Batch()
        for message in messages:
            source = SourceId(kind, message.partition)
            if not message.control:
                batch.messages.setdefault(source, []).append(message)
                continue
            try:
                batch.controls.setdefault(source, []).append(decode_control(message.value))
            except (msgspec.ValidationError, msgspec.DecodeError) as error:
                rejection = Rejection("invalid_control", f"not a control message: {error}", None, message.value)
                batch.bad_controls.setdefault(source, []).append(
                    DeadLetter(rejection, message.topic, message.partition, message.offset))
        return batch

    def process(self, batch: Batch, now: int, not_after: int | None) -> list[SourcePlan]:
        """Fold a batch whose sources are all restored (`missing` is empty) and whose controls'
        catalogue is in (`Batch.catalog_end`). `now`: the wall clock, "as of" in live mode."""
        plans = []
        for source in batch.sources:
            scorer = self.scorers[source]
            as_of = None if self.mode == "replay" else now
            result = scorer.process(batch.messages.get(source, []), as_of, not_after)
            result.dead_letters += batch.bad_controls.get(source, [])
            replace = source in self._restored
            watermarks: list[str] = []
            catalog_end = 0
            for control in batch.controls.get(source, []):
                catalog_end = max(catalog_end, control.catalog_end)
                if control.kind == "watermark" and self.mode == "replay":
                    _merge(result, scorer.process([], control.as_of))  # a replay closes at the history's end
                    watermarks.append(control.token)
                elif control.kind == "rebuild":
                    # Re-send everything this source knows: the projection is rebuilt from table state.
                    self._restored[source] = scorer.all_tallies()
                    replace = True
                    result.listings = scorer.all_listings(result.as_of)
                    watermarks.append(control.token)
            plan = self._plan(result, replace, watermarks[-1] if watermarks else None, catalog_end)
            # One token per snapshot used to keep only the last: a replay whose watermark shared a
            # batch with a rebuild never closed (found by bench.chaos, Redis wiped mid-replay).
            plan.closes = [TallySnapshot(source=str(source), seq=self._next_seq(source), as_of=result.as_of,
                                         entries=[], watermark=token, catalog_end=catalog_end)
                           for token in watermarks[:-1]]
            plans.append(plan)
        return plans

    def tick(self, now: int) -> list[SourcePlan]:
        """Live mode: let time pass to `now` on every source; a plan for each that changed."""
        if self.mode != "live":
            return []
        plans = []
        for source, scorer in list(self.scorers.items()):
            result = scorer.process([], now)
            if result.tallies or result.alerts or result.listings:
                plans.append(self._plan(result, source in self._restored, None, 0))
        return plans

    def _plan(self, result: BatchResult, replace: bool, watermark: str | None, catalog_end: int) -> SourcePlan:
        source = result.source
        entries = result.tallies
        if replace:  # all of the source's tallies, the batch's own newer
            merged = {(owner, period): counters for owner, period, counters in self._restored.pop(source)}
            merged.update({(owner, period): counters for owner, period, counters in result.tallies})
            entries = [(owner, period, counters) for (owner, period), counters in merged.items()]
        rejected: dict[str, int] = {}
        for letter in result.dead_letters:
            rejected[letter.rejection.reason] = rejected.get(letter.rejection.reason, 0) + 1
        tally = None
        if entries or replace or watermark or result.as_of:
            tally = TallySnapshot(source=str(source), seq=self._next_seq(source), as_of=result.as_of, entries=entries,
                                  replace=replace, watermark=watermark, catalog_end=catalog_end)
        return SourcePlan(
            source=source, as_of=result.as_of,
            state_writes={code.encode(): value for code, value in result.state_writes.items()},
            dead_letters=[orjson.dumps(letter.as_json()) for letter in result.dead_letters], rejected=rejected,
            reroutes=rerouted_messages(result.reroute, self.partitions), listings=result.listings,
            alerts=result.alerts, tally=tally, events=result.events)

    def _next_seq(self, source: SourceId) -> Seq:
        """Snapshots are numbered as they are built, so a later one always has a larger number,
        whichever of them reaches the projector first."""
        self._sent[source] += 1
        return (self._epochs[source], self._sent[source])


def _merge(result: BatchResult, later: BatchResult) -> None:
    """`later` (the same source, after `result`) folded into `result`."""
    result.as_of = later.as_of
    seen = {(owner, period): index for index, (owner, period, _) in enumerate(result.tallies)}
    for owner, period, counters in later.tallies:
        if (owner, period) in seen:
            result.tallies[seen[(owner, period)]] = (owner, period, counters)
        else:
            result.tallies.append((owner, period, counters))
    result.state_writes.update(later.state_writes)
    result.alerts += later.alerts
    result.listings += later.listings


# --- the projector ------------------------------------------------------------------------------


@dataclass
class ProjectionPlan:
    """What a batch of tally snapshots makes the projector do, in this order:

    1. `table_writes` into the tally table (store and changelog);
    2. wait until the catalogue is folded up to `catalog_end` (a closing source may have read further
       into it than this worker);
    3. score the periods `ProjectorCore.due_periods` gives (forced when there are `tokens`) and write
       them to Redis;
    4. record each of `tokens` (token, source, as_of) as through, after the scores they close;
    5. write `sources_as_of`; then await the deliveries of step 1."""

    table_writes: dict[bytes, bytes | None] = field(default_factory=dict)
    catalog_end: int = 0
    tokens: list[tuple[str, str, int]] = field(default_factory=list)
    sources_as_of: dict[str, int] = field(default_factory=dict)
    ignored: int = 0  # values that were no tally snapshot


class ProjectorCore:
    """The projector's side: the tally book, and when to score which periods (it coalesces bursts:
    scoring a period costs milliseconds per unit)."""

    def __init__(self, book: TallyBook, score_every: float, full_rescore_seconds: float = FULL_RESCORE_SECONDS):
        self.book, self.score_every, self.full_rescore_seconds = book, score_every, full_rescore_seconds
        self.loaded = False
        self.pending: set[str] = set()
        self.last_full_rescore = 0.0
        self.last_scoring = 0.0

    def load(self, stored: Iterable[tuple[bytes, bytes]]) -> None:
        self.book.load((key.decode(), value) for key, value in stored)
        self.loaded = True

    def apply(self, values: Iterable[bytes], monotonic: float) -> ProjectionPlan:
        """Fold a batch of tally-topic values; `monotonic`: a monotonic clock in seconds."""
        plan = ProjectionPlan()
        touched: set[str] = set()
        before = self.book.overall_as_of
        for value in values:
            try:
                message = decode_tally(value)
            except (msgspec.ValidationError, msgspec.DecodeError):
                plan.ignored += 1
                continue
            periods, changed = self.book.apply(message)
            touched |= periods
            plan.table_writes.update((key.encode(), written) for key, written in changed.items())
            if message.watermark:
                plan.tokens.append((message.watermark, message.source, message.as_of))
                plan.catalog_end = max(plan.catalog_end, message.catalog_end)
        clock_moved = self.book.overall_as_of != before
        if plan.tokens or (clock_moved and monotonic - self.last_full_rescore > self.full_rescore_seconds):
            touched |= set(self.book.periods())
            self.last_full_rescore = monotonic
        self.pending |= touched
        plan.sources_as_of = dict(self.book.as_of)
        return plan

    def due_periods(self, monotonic: float, force: bool = False) -> list[str]:
        """The periods to score now: the pending ones once `score_every` has passed; forced (a
        watermark came through), every period the book has, whatever was scored meanwhile — the
        catalogue the closing waited for may have come in after. None of them is pending after."""
        if force:
            periods = sorted(self.pending | set(self.book.periods()))
        elif self.pending and monotonic - self.last_scoring >= self.score_every:
            periods = sorted(self.pending)
        else:
            return []
        self.pending.clear()
        self.last_scoring = monotonic
        return periods

    def score(self, period: str) -> tuple[list[UnitScore], list[OfficerTally]]:
        return self.book.score(period)

    @property
    def as_of(self) -> int:
        return self.book.overall_as_of
