"""The projector's tally book: absolute tallies per (source partition, owner, period), pooled on read.

Workers send the absolute counters of every (owner, period) a batch changed, and all of a source's
counters when they rebuild it after a restart ("replace"), so applying a snapshot twice changes
nothing. Snapshots of one source can still arrive out of order (a live worker's clock tick may send
a newer one while an older one waits on Redis), so each carries a sequence number, and each entry
keeps the sequence number of the snapshot that set it: an older snapshot never overwrites a newer
entry. An entry that went to zero keeps its number (a tombstone), and a replace raises the source's
floor, below which nothing of that source applies any more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

import msgspec

from contracts.messages import Seq, TallySnapshot
from scoring.calendar import WorkingCalendar
from scoring.directory import Directory
from scoring.periods import parse_period
from scoring.rollup import OfficerTally, UnitScore, officer_tallies, score_units
from scoring.ruleset import Ruleset

log = logging.getLogger(__name__)
Entry = tuple[str, str, str]  # (source, owner, period)
OLDEST: Seq = (0, 0)


class StoredEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A tally-table value: an entry's counters (empty: a tombstone) and the snapshot that set them."""

    version: Literal[1] = 1
    counters: dict[str, int]
    seq: Seq


class StoredSource(msgspec.Struct, frozen=True, kw_only=True):
    """The tally-table value of a source's own key: how far it got, and its floor."""

    version: Literal[1] = 1
    as_of: int
    floor: Seq = OLDEST


_encoder = msgspec.json.Encoder()


class TallyBook:
    def __init__(self, ruleset: Ruleset, calendar: WorkingCalendar, directory: Directory):
        self.ruleset, self.calendar, self.directory = ruleset, calendar, directory
        self.entries: dict[Entry, dict[str, int]] = {}
        self.seqs: dict[Entry, Seq] = {}  # every entry's, tombstones included
        self.by_period: dict[str, set[tuple[str, str]]] = {}
        self.as_of: dict[str, int] = {}
        self.floors: dict[str, Seq] = {}
        self.unreadable: list[str] = []  # table keys `load` could not read, reported and skipped

    def load(self, stored: Iterable[tuple[str, bytes]]) -> None:
        """From the tally table. Values written before sequence numbers existed (a plain counters
        object, `{"as_of": N}`) load as the oldest sequence number."""
        for key, raw in stored:
            try:
                source, owner, period = key.split("\x1f")
                value = msgspec.json.decode(raw)
            except (ValueError, msgspec.DecodeError) as error:
                # A key or value this book cannot read (written by a bug, or by hand) is reported and
                # skipped: the source's next snapshot or replace rewrites what it held.
                self.unreadable.append(key)
                log.warning("tally table entry %r skipped: %s", key, error)
                continue
            if owner == "" and period == "":
                self.as_of[source] = int(value["as_of"])
                self.floors[source] = tuple(value.get("floor", OLDEST))
            elif "version" in value:
                self._set((source, owner, period), value["counters"], tuple(value["seq"]))
            else:
                self._set((source, owner, period), value, OLDEST)

    def _set(self, entry: Entry, counters: dict[str, int], seq: Seq) -> None:
        source, owner, period = entry
        self.seqs[entry] = seq
        if counters:
            self.entries[entry] = counters
            self.by_period.setdefault(period, set()).add((source, owner))
        else:
            self.entries.pop(entry, None)
            self.by_period.get(period, set()).discard((source, owner))

    def _forget(self, entry: Entry) -> None:
        self.seqs.pop(entry, None)
        self.entries.pop(entry, None)
        self.by_period.get(entry[2], set()).discard((entry[0], entry[1]))

    def apply(self, message: TallySnapshot) -> tuple[set[str], dict[str, bytes | None]]:
        """Fold one snapshot; returns the periods it changed and the table writes to make (encoded
        values; None deletes)."""
        source, seq = message.source, tuple(message.seq)
        writes: dict[str, bytes | None] = {}
        touched: set[str] = set()
        floor = self.floors.get(source, OLDEST)
        floor_moved = False
        if message.replace and seq > floor:
            # Everything of the source older than this snapshot is gone, unless the snapshot has it.
            self.floors[source] = floor = seq
            floor_moved = True
            for entry in [e for e, at in self.seqs.items() if e[0] == source and at < seq]:
                if entry in self.entries:
                    touched.add(entry[2])
                self._forget(entry)
                writes[key_of(entry)] = None
        if seq >= floor:
            for owner, period, counters in message.entries:
                entry = (source, owner, period)
                if seq < self.seqs.get(entry, OLDEST):
                    continue  # a newer snapshot of the source already set it
                touched.add(period)
                self._set(entry, counters, seq)
                writes[key_of(entry)] = _encoder.encode(StoredEntry(counters=counters, seq=seq))
        as_of = message.as_of
        if as_of > self.as_of.get(source, 0) or floor_moved:
            self.as_of[source] = max(as_of, self.as_of.get(source, 0))
            writes[key_of((source, "", ""))] = _encoder.encode(StoredSource(as_of=self.as_of[source], floor=floor))
        return touched, writes

    @property
    def overall_as_of(self) -> int:
        return max(self.as_of.values(), default=0)

    def owners(self, period: str) -> dict[str, dict[str, int]]:
        """The period's counters per owner, pooled over the sources."""
        pooled: dict[str, dict[str, int]] = {}
        for source, owner in self.by_period.get(period, ()):
            counters = self.entries[(source, owner, period)]
            mine = pooled.get(owner)
            if mine is None:
                pooled[owner] = dict(counters)
            else:
                for name, value in counters.items():
                    mine[name] = mine.get(name, 0) + value
        # As `split_by_owner` gives the batch scorer: no zero counters, no owner without counters.
        return {owner: nonzero for owner, counters in pooled.items()
                if (nonzero := {name: value for name, value in counters.items() if value})}

    def score(self, period: str) -> tuple[list[UnitScore], list[OfficerTally]]:
        owners = self.owners(period)
        units = score_units(owners, parse_period(period), self.overall_as_of, self.directory, self.ruleset,
                            self.calendar)
        return units, officer_tallies(owners, units, self.ruleset)

    def periods(self) -> list[str]:
        return sorted(period for period, members in self.by_period.items() if members)


def key_of(entry: Entry) -> str:
    return "\x1f".join(entry)
