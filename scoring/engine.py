"""The scoring engine: folds events into states and keeps counter tallies, in batch or incrementally.

`Engine.apply_batch(events, as_of)` is what a streaming worker calls: it reduces the batch, then
re-contributes every dossier the batch touched and every dossier whose time-driven change (turning
overdue, a new month) fell due by `as_of`, and returns the (owner, period) pairs whose counters
changed. `Engine.full_tallies` recomputes everything from the states; for the same events the two
agree — that is a test.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable

from schemas import events as ev
from scoring import contributions as contrib
from scoring.alerts import Alert, AlertPolicy, alerts_between, next_alert_at
from scoring.calendar import EPOCH_ORDINAL, WorkingCalendar
from scoring.contributions import Context, Contribution, PetitionState
from scoring.directory import Directory
from scoring.lifecycle import OFFSETS, REDUCERS, DossierState, epoch_seconds
from scoring.periods import Period
from scoring.rollup import UnitScore, score_units, split_by_owner
from scoring.ruleset import Ruleset

Pair = tuple[str, str]  # (owner, period)
Counters = dict[str, int]  # counter name → value, zeros left out
DOSSIER, PETITION = "d", "p"
DOSSIER_EVENT_TYPES = frozenset(ev.DossierEvents.__args__)
PARTS_CHANGED_BY = contrib.PARTS_CHANGED_BY


def petition_link(event: ev.PetitionReceived) -> ev.PetitionLinked:
    """The dossier-side event of a petition about a dossier (indicator 5.4 counts it against it)."""
    return ev.PetitionLinked(event_id=f"{event.event_id}#link", occurred_at=event.occurred_at, source=event.source,
                             dossier_code=event.dossier_code or "", petition_id=event.petition_id)


class Engine:
    def __init__(self, ruleset: Ruleset, calendar: WorkingCalendar, directory: Directory | None = None,
                 alert_policy: AlertPolicy | None = None, link_petitions: bool = True):
        self.context = Context(ruleset, calendar, directory or Directory())
        self.alert_policy = alert_policy
        # A streaming worker folds petitions and dossiers in different partitions and forwards the
        # link as an event instead; the batch scorer links in place.
        self.link_petitions = link_petitions
        self.alerts: list[Alert] = []  # raised by apply_batch; the caller drains them
        self.touched: list[tuple[str, str]] = []  # entities the last apply_batch re-contributed
        self.dossiers: dict[str, DossierState] = {}
        self.petitions: dict[str, PetitionState] = {}
        self.pairs: dict[Pair, Counters] = {}  # the tallies, per (owner, period)
        self.as_of: int | None = None
        self.latest_event_at: int | None = None
        self._emitted_at: dict[tuple[str, str], int] = {}
        self._schedule: list[tuple[int, str, str]] = []
        self._scheduled: dict[tuple[str, str], int] = {}
        # Contributions as last tallied. Parts are shared memo objects, so this costs a tuple per
        # entity; a worker that restarts without it recomputes them from state and `_emitted_at`.
        self._last: dict[tuple[str, str], Contribution] = {}
        self._stale: dict[tuple[str, str], int] = {}  # parts the current batch may have changed
        self._directory_version = self.directory.version

    @property
    def directory(self) -> Directory:
        return self.context.directory

    # --- folding --------------------------------------------------------------------------------

    def _fold_all(self, events: Iterable[ev.EventBase], before: dict[tuple[str, str], Contribution] | None) -> bool:
        """Reduce events into states. With `before`, remember each touched entity's contribution as
        last emitted and which parts its events may change. Returns True when the directory changed.
        The dossier path is written out inline: it runs for almost every event."""
        directory_changed = False
        dossiers, stale, emitted = self.dossiers, self._stale, self._emitted
        latest = self.latest_event_at or 0
        offsets = OFFSETS
        for event in events:
            # `epoch_seconds`, inlined: a call per event is a tenth of the fold.
            occurred = event.occurred_at
            offset = offsets.get(occurred.tzinfo)
            if offset is None:
                moment = epoch_seconds(occurred)
            else:
                moment = ((occurred.toordinal() - EPOCH_ORDINAL) * 86400 + occurred.hour * 3600
                          + occurred.minute * 60 + occurred.second - offset)
            if moment > latest:
                latest = moment
            event_type = type(event)
            if event_type not in DOSSIER_EVENT_TYPES:
                directory_changed |= self._fold_other(event, moment, before)
                continue
            code = event.dossier_code  # type: ignore[attr-defined]
            if before is not None:
                key = (DOSSIER, code)
                if key not in before:
                    before[key] = emitted(key)
                stale[key] = stale.get(key, 0) | PARTS_CHANGED_BY[event_type]
            state = dossiers.get(code)
            if state is None:
                state = dossiers[code] = DossierState(code)
            REDUCERS[event_type](state, event, moment)
        if latest:
            self.latest_event_at = latest
        return directory_changed

    def _fold_other(self, event: ev.EventBase, moment: int,
                    before: dict[tuple[str, str], Contribution] | None) -> bool:
        if isinstance(event, ev.PetitionEvent):
            key = (PETITION, event.petition_id)
            if before is not None and key not in before:
                before[key] = self._emitted(key)
            self.petitions[event.petition_id] = contrib.reduce_petition(self.petitions.get(event.petition_id), event)
            if self.link_petitions and isinstance(event, ev.PetitionReceived) and event.dossier_code:
                self._fold_all([petition_link(event)], before)
        elif isinstance(event, ev.UnitUpserted | ev.ProcedureUpserted):
            return self.directory.apply(event)
        return False

    def load(self, events: Iterable[ev.EventBase]) -> None:
        """Fold events with no tallying (the batch scorer tallies once, at the end)."""
        self._fold_all(events, None)

    # --- contributions --------------------------------------------------------------------------

    def contribution(self, key: tuple[str, str], as_of: int, previous: Contribution = (),
                     stale: int = contrib.ALL_PARTS) -> Contribution:
        kind, code = key
        if kind == DOSSIER:
            return contrib.dossier_contribution(self.dossiers[code], as_of, self.context, previous, stale)
        return contrib.petition_contribution(self.petitions[code], as_of, self.context)

    def _emitted(self, key: tuple[str, str]) -> Contribution:
        """The contribution last added to the tallies: cached, or recomputed from the state."""
        cached = self._last.get(key)
        if cached is not None:
            return cached
        emitted_at = self._emitted_at.get(key)
        return () if emitted_at is None else self.contribution(key, emitted_at)

    def _next_change(self, key: tuple[str, str], as_of: int) -> int | None:
        kind, code = key
        if kind != DOSSIER:
            return contrib.petition_next_change(self.petitions[code], as_of, self.context)
        state = self.dossiers[code]
        when = contrib.next_change(state, as_of, self.context)
        if self.alert_policy is not None and state.received_at is not None:
            alert_at = next_alert_at(state, as_of, *self._alert_args(state))
            if alert_at is not None and (when is None or alert_at < when):
                when = alert_at
        return when

    def _alert_args(self, state: DossierState) -> tuple:
        context = self.context
        return (context.ruleset.lifecycle, context.calendar, context.directory.hours(state.unit),
                self.alert_policy, context.fallback_due(state))

    def _raise_alerts(self, key: tuple[str, str], as_of: int) -> None:
        kind, code = key
        state = self.dossiers.get(code) if kind == DOSSIER else None
        if self.alert_policy is None or state is None or state.received_at is None:
            return
        since = self._emitted_at.get(key, state.received_at - 1)
        self.alerts += alerts_between(state, since, as_of, *self._alert_args(state))

    def full_pairs(self, as_of: int, remember: bool = False) -> dict[Pair, Counters]:
        """Every counter recomputed from the states as of `as_of`, per (owner, period); with
        `remember`, each contribution is also kept as the one last tallied."""
        blocks: dict = {}
        for key in self._keys():
            contribution = self.contribution(key, as_of)
            if remember:
                self._last[key] = contribution
            contrib.count_blocks(blocks, contribution)
        pairs: dict[Pair, Counters] = {}
        contrib.add_blocks(pairs, blocks)
        return pairs

    def full_tallies(self, as_of: int) -> Counter:
        """`full_pairs` as one flat mapping (owner, period, counter) → value."""
        return _flat(self.full_pairs(as_of))

    @property
    def tallies(self) -> Counter:
        """The current counters as one flat mapping (owner, period, counter) → value."""
        return _flat(self.pairs)

    def _keys(self) -> Iterable[tuple[str, str]]:
        yield from ((DOSSIER, code) for code in self.dossiers)
        yield from ((PETITION, code) for code in self.petitions)

    # --- incremental ----------------------------------------------------------------------------

    def apply_batch(self, events: Iterable[ev.EventBase], as_of: int | None = None) -> set[Pair]:
        """Fold a batch; returns the (owner, period) pairs whose counters it changed by `as_of`
        (their values are in `pairs`).

        `as_of` defaults to the latest event time seen (replay); a live worker passes the clock.
        """
        before: dict[tuple[str, str], Contribution] = {}
        directory_changed = self._fold_all(events, before)
        as_of = max(as_of or 0, self.latest_event_at or 0, self.as_of or 0)
        self.as_of = as_of
        if directory_changed or self._directory_version != self.directory.version:
            self._directory_version = self.directory.version
            self.touched = list(self._keys())
            return self._rebuild(as_of)
        while self._schedule and self._schedule[0][0] <= as_of:
            _, kind, code = heapq.heappop(self._schedule)
            key = (kind, code)
            if self._scheduled.get(key) is not None and self._scheduled[key] <= as_of:
                del self._scheduled[key]
                if key not in before:
                    before[key] = self._emitted(key)
                self._stale[key] = self._stale.get(key, 0) | contrib.TIME_DRIVEN_PARTS
        self.touched = list(before)
        blocks: dict = {}
        stale_parts = self._stale
        for key, old in before.items():
            # Reuse is only safe from a contribution that was really emitted at `_emitted_at`.
            reusable = old if key in self._last else ()
            new = self.contribution(key, as_of, reusable, stale_parts.get(key, contrib.ALL_PARTS))
            contrib.diff(old, new, blocks)
            self._raise_alerts(key, as_of)
            self._emitted_at[key] = as_of
            self._last[key] = new
            self._plan(key, as_of)
        stale_parts.clear()
        return contrib.add_blocks(self.pairs, blocks)

    def _plan(self, key: tuple[str, str], as_of: int) -> None:
        when = self._next_change(key, as_of)
        if when is None or self._scheduled.get(key) == when:
            return
        self._scheduled[key] = when
        heapq.heappush(self._schedule, (when, *key))

    def recount(self, as_of: int) -> set[Pair]:
        """Recompute every tally from the states (after a batch that failed part-way); returns
        the pairs whose counters changed."""
        return self._rebuild(as_of)

    def _rebuild(self, as_of: int) -> set[Pair]:
        """After a catalogue change every contribution may differ: recompute all, return the pairs
        whose counters changed."""
        self._last.clear()
        fresh = self.full_pairs(as_of, remember=True)
        changed = {pair for pair in fresh.keys() | self.pairs.keys() if fresh.get(pair) != self.pairs.get(pair)}
        self.pairs = fresh
        self._schedule.clear()
        self._scheduled.clear()
        for key in list(self._keys()):
            self._raise_alerts(key, as_of)
            self._emitted_at[key] = as_of
            self._plan(key, as_of)
        return changed

    def score_units(self, period: Period, as_of: int) -> list[UnitScore]:
        """Scored, ranked units for a period, from tallies recomputed as of `as_of`."""
        context = self.context
        owners = split_by_owner(self.full_tallies(as_of), period.key)
        return score_units(owners, period, as_of, context.directory, context.ruleset,
                           context.calendar)

    def restore(self, dossiers: Iterable[DossierState], petitions: Iterable[PetitionState], as_of: int) -> None:
        """Take states recovered from a changelog and recompute every tally from them."""
        for state in dossiers:
            self.dossiers[state.code] = state
        for petition in petitions:
            self.petitions[petition.petition_id] = petition
        self.as_of = max(as_of, self.as_of or 0)
        self._rebuild(self.as_of)
        self._directory_version = self.directory.version


def _flat(pairs: dict[Pair, Counters]) -> Counter:
    return Counter({(owner, period, name): value for (owner, period), counters in pairs.items()
                    for name, value in counters.items()})
