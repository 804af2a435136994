"""The projector's tally book: absolute tallies per (source partition, owner, period), pooled on read.

Workers send the absolute counters of every (owner, period) a batch changed, and all of a source's
counters when they rebuild it after a restart ("replace"), so applying a message twice, or an old
one after a newer, converges on the same book once the source's latest message is in.
"""

from __future__ import annotations

from collections.abc import Iterable

from scoring.calendar import WorkingCalendar
from scoring.directory import Directory
from scoring.periods import parse_period
from scoring.rollup import OfficerTally, UnitScore, officer_tallies, score_units
from scoring.ruleset import Ruleset

Entry = tuple[str, str, str]  # (source, owner, period)


class TallyBook:
    def __init__(self, ruleset: Ruleset, calendar: WorkingCalendar, directory: Directory):
        self.ruleset, self.calendar, self.directory = ruleset, calendar, directory
        self.entries: dict[Entry, dict[str, int]] = {}
        self.by_period: dict[str, set[tuple[str, str]]] = {}
        self.as_of: dict[str, int] = {}

    def load(self, stored: Iterable[tuple[str, dict]]) -> None:
        for key, value in stored:
            source, owner, period = key.split("\x1f")
            if owner == "" and period == "":
                self.as_of[source] = int(value["as_of"])
            else:
                self._set((source, owner, period), value)

    def _set(self, entry: Entry, counters: dict[str, int]) -> None:
        source, owner, period = entry
        if counters:
            self.entries[entry] = counters
            self.by_period.setdefault(period, set()).add((source, owner))
        else:
            self.entries.pop(entry, None)
            self.by_period.get(period, set()).discard((source, owner))

    def apply(self, message: dict) -> tuple[set[str], dict[str, dict | None]]:
        """Fold one worker message; returns the periods it touched and the table writes to make."""
        source = message["source"]
        writes: dict[str, dict | None] = {}
        touched: set[str] = set()
        if message.get("replace"):
            for entry in [e for e in self.entries if e[0] == source]:
                self._set(entry, {})
                writes[key_of(entry)] = None
                touched.add(entry[2])
        for owner, period, counters in message.get("entries", ()):
            entry = (source, owner, period)
            self._set(entry, counters)
            writes[key_of(entry)] = counters or None
            touched.add(period)
        as_of = int(message.get("as_of") or 0)
        if as_of > self.as_of.get(source, 0):
            self.as_of[source] = as_of
            writes[key_of((source, "", ""))] = {"as_of": as_of}
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
