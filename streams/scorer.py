"""The worker's processing, free of Faust: one Engine per source partition, raw messages in,
everything to write out (state, tallies, alerts, dossier lists, dead letters) as plain data.

`streams.core` drives one per source partition; `streams.app` performs what the core plans.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import msgspec

from contracts.messages import SourceId, SourceKind
from contracts.topics import TOPIC_OF_ENTITY
from schemas import Rejection, decode_message
from schemas import events as ev
from schemas.personal_data import scrub
from scoring.alerts import Alert, AlertPolicy
from scoring.calendar import WorkingCalendar
from scoring.contributions import PetitionState, holder_at
from scoring.directory import Directory
from scoring.engine import DOSSIER, Engine, petition_link
from scoring.lifecycle import DossierState, Outcome, classify, due_for_scoring, end_time
from scoring.ruleset import Ruleset
from streams.config import CATALOG_TOPIC, DOSSIER_TOPIC
from streams.partitioning import ArrayGrouper, Outgoing, partition_for

TallyPair = tuple[str, str]  # (owner, period)
_dossier_codec = msgspec.msgpack.Encoder()
_dossier_decoder = msgspec.msgpack.Decoder(DossierState)
_petition_decoder = msgspec.msgpack.Decoder(PetitionState)


def encode_state(state: DossierState | PetitionState) -> bytes:
    return _dossier_codec.encode(state)


def decode_dossier(data: bytes) -> DossierState:
    return _dossier_decoder.decode(data)


def decode_petition(data: bytes) -> PetitionState:
    return _petition_decoder.decode(data)


@dataclass
class RawMessage:
    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int
    control: bool = False  # a watermark / rebuild message (`CONTROL_HEADER`), not events


log = logging.getLogger(__name__)
DEAD_LETTER_RAW_BYTES = 64 * 1024  # the raw message kept in a dead-letter record, at most


def _where(error: BaseException) -> str:
    """The innermost frame of an exception, as file:line — enough to find the bug, short enough to keep."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"


@dataclass
class DeadLetter:
    rejection: Rejection
    topic: str
    partition: int
    offset: int

    def as_json(self) -> dict:
        """The record sent to the dead-letter topic: the reason, where the original is (topic,
        partition, offset), its size and SHA-256 — and, only for a message that parses as JSON, its
        bytes without the personal-data fields (`schemas.personal_data`; `raw_removed` names them),
        at most DEAD_LETTER_RAW_BYTES of them. A message that is not JSON may hold personal data
        anywhere: nothing of it is kept but its size, hash and offsets."""
        raw = self.rejection.raw
        letter = {"reason": self.rejection.reason, "detail": self.rejection.detail[:DEAD_LETTER_RAW_BYTES],
                  "path": self.rejection.path, "topic": self.topic, "partition": self.partition,
                  "offset": self.offset, "raw_bytes": len(raw), "raw_sha256": hashlib.sha256(raw).hexdigest()}
        scrubbed = scrub(raw)
        if scrubbed.data is None:
            letter["raw_withheld"] = "not JSON: cannot remove personal data from it"
            return letter
        kept = scrubbed.data[:DEAD_LETTER_RAW_BYTES]
        letter["raw"] = kept.decode("utf-8", "backslashreplace")
        if scrubbed.removed:
            letter["raw_removed"] = list(scrubbed.removed)
        if len(kept) < len(scrubbed.data):
            letter["raw_truncated"] = True
        return letter


@dataclass
class Listing:
    """Where an open dossier belongs in the overdue / approaching lists (or that it left them)."""

    dossier: str
    unit: str | None
    officer: str | None
    procedure: str | None
    due: int | None
    state: str  # "overdue", "approaching", "open" (in no list), "late" (completed late) or "closed"
    completed: int | None = None  # when a late dossier was completed


@dataclass
class BatchResult:
    source: SourceId
    as_of: int
    state_writes: dict[str, bytes] = field(default_factory=dict)
    tallies: list[tuple[str, str, dict[str, int]]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    listings: list[Listing] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    reroute: list[tuple[str, str, bytes]] = field(default_factory=list)  # (topic, entity key, event json)
    events: int = 0



def rerouted_messages(reroute: list[tuple[str, str, bytes]], partitions: int) -> list[Outgoing]:
    """Events to send on: one JSON array per topic partition, so a batch that brought many foreign
    events sends a few messages, not one per event."""
    arrays = ArrayGrouper(partitions)
    for topic, key, body in reroute:
        arrays.add(topic, key, body, partition=0 if topic == CATALOG_TOPIC else None)
    return arrays.drain()


class SourceScorer:
    """One source partition (`d3` = dossier-events partition 3, `p1` = petition-events partition 1)."""

    def __init__(self, source: SourceId, partitions: int, ruleset: Ruleset, calendar: WorkingCalendar,
                 directory: Directory, policy: AlertPolicy, approaching_minutes: int):
        self.source, self.partitions = source, partitions
        self.partition = source.partition
        self.dossiers = source.kind is SourceKind.DOSSIER  # else petitions
        self.engine = Engine(ruleset, calendar, directory, alert_policy=policy, link_petitions=self.dossiers)
        self.approaching_minutes = approaching_minutes
        self._listed: dict[str, Listing] = {}  # as last written to Redis: unchanged ones are skipped

    # --- recovery -------------------------------------------------------------------------------

    def restore(self, stored: Iterable[tuple[str, bytes]], as_of: int) -> list[tuple[str, str, dict[str, int]]]:
        """Rebuild from the state table; returns every tally of this source (absolute)."""
        dossiers, petitions = [], []
        for key, value in stored:
            if partition_for(key, self.partitions) != self.partition:
                continue
            if self.dossiers:
                dossiers.append(decode_dossier(value))
            else:
                petitions.append(decode_petition(value))
        self.engine.restore(dossiers, petitions, as_of)
        return self.all_tallies()

    def all_tallies(self) -> list[tuple[str, str, dict[str, int]]]:
        return [(owner, period, dict(counters)) for (owner, period), counters in self.engine.pairs.items()]

    def all_listings(self, as_of: int) -> list[Listing]:
        return [self.listing(state, as_of) for state in self.engine.dossiers.values()
                if state.received_at is not None]

    # --- a batch --------------------------------------------------------------------------------

    def decode(self, messages: Iterable[RawMessage], result: BatchResult,
               not_after: int | None = None) -> Iterator[ev.EventBase]:
        homes: dict[str, bool] = {}  # entities of this batch that are new here: is this their partition
        future = ev.FutureCheck(not_after) if not_after is not None else None
        for message in messages:
            for item in decode_message(message.value, future):
                if isinstance(item, Rejection):
                    result.dead_letters.append(DeadLetter(item, message.topic, message.partition, message.offset))
                    continue
                key = ev.entity_key(item)
                if self._misrouted(item, key, homes):
                    result.reroute.append((TOPIC_OF_ENTITY[ev.entity_kind(item)], key, ev.encode(item)))
                    continue
                result.events += 1
                if isinstance(item, ev.PetitionReceived) and item.dossier_code:
                    result.reroute.append((DOSSIER_TOPIC, item.dossier_code, ev.encode(petition_link(item))))
                yield item

    def _misrouted(self, event: ev.EventBase, key: str, homes: dict[str, bool]) -> bool:
        """A batched message may mix entities of several partitions; each must be folded where its
        state lives, so events of another partition are sent on, keyed by their entity."""
        if self.dossiers:
            if not isinstance(event, ev.DossierEvent):
                return True
            known = self.engine.dossiers
        else:
            if not isinstance(event, ev.PetitionEvent):
                return True
            known = self.engine.petitions
        # State is only ever created here for entities of this partition; hashing the key (pure
        # Python murmur2, a fifth of the core's time) is needed only for entities seen first.
        if key in known:
            return False
        home = homes.get(key)
        if home is None:
            home = homes[key] = partition_for(key, self.partitions) == self.partition
        return not home

    def process(self, messages: Iterable[RawMessage], as_of: int | None, not_after: int | None = None) -> BatchResult:
        """Fold a batch of messages; with no messages, let time pass to `as_of` (live mode). Events
        dated after `not_after` (the wall clock plus a tolerance) are dead letters (`future_time`)."""
        result = BatchResult(self.source, as_of or 0)
        events = list(self.decode(messages, result, not_after))
        try:
            changed = self.engine.apply_batch(events, as_of)
        except Exception:  # one poison event must stop neither the partition nor its batch
            changed = self._isolated(events, as_of, result)
        result.as_of = self.engine.as_of or 0
        self._collect(changed, result)
        return result

    def _isolated(self, events: list[ev.EventBase], as_of: int | None, result: BatchResult) -> set[TallyPair]:
        """After a batch raised: recount the tallies from the states (the failed batch may have left
        them half-updated), then fold the events one at a time; one that raises again is a dead letter
        with the exception's summary, and the rest of the batch counts."""
        engine = self.engine
        changed = engine.recount(engine.as_of or 0)
        for event in events:
            try:
                changed |= engine.apply_batch([event], as_of)
            except Exception as error:  # see process()
                log.warning("event %s of %s could not be processed: %r", event.event_id, self.source, error)
                summary = "".join(traceback.format_exception_only(error)).strip()[:500]
                rejection = Rejection("processing_error", f"{summary} (at {_where(error)})", None, ev.encode(event))
                result.dead_letters.append(DeadLetter(rejection, "", self.partition, -1))
                result.events -= 1
                changed |= engine.recount(engine.as_of or 0)
        return changed

    def _collect(self, changed: set[TallyPair], result: BatchResult) -> None:
        engine = self.engine
        pairs = engine.pairs
        # Copies: the message is sent after this returns, and a later step may change the counters.
        result.tallies = [(owner, period, dict(pairs.get((owner, period), {}))) for owner, period in sorted(changed)]
        result.alerts, engine.alerts = engine.alerts, []
        for kind, code in sorted(engine.touched):
            if kind == DOSSIER:
                state = engine.dossiers[code]
                result.state_writes[code] = encode_state(state)
                listing = self.listing(state, result.as_of)
                if self._listed.get(code) != listing:
                    result.listings.append(listing)
                    self._listed[code] = listing
            else:
                result.state_writes[code] = encode_state(engine.petitions[code])

    def listing(self, state: DossierState, as_of: int) -> Listing:
        engine = self.engine
        context = engine.context
        officer = holder_at(state, as_of)
        due = due_for_scoring(state, context.ruleset.lifecycle) or context.fallback_due(state)
        outcome = classify(state, as_of, context.ruleset.lifecycle, context.fallback_due(state))
        if outcome is Outcome.OVERDUE:
            kind = "overdue"
        elif outcome is Outcome.IN_PROGRESS and due is not None and context.calendar.working_minutes_between(
                as_of, due, context.directory.hours(state.unit), self.approaching_minutes) <= self.approaching_minutes:
            kind = "approaching"
        elif outcome is Outcome.IN_PROGRESS:
            kind = "open"
        elif outcome is Outcome.LATE:  # the monthly list of dossiers completed late names who held it last
            completed = end_time(state, as_of)
            return Listing(state.code, state.unit, holder_at(state, completed or as_of), state.procedure, due, "late",
                           completed)
        else:
            kind = "closed"
        return Listing(state.code, state.unit, officer, state.procedure, due, kind)
