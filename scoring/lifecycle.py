"""Dossier state, its reducer, and the on-time classification of DOMAIN.md §3.

The state is a join-semilattice: every field merges by min, max, set union or a logical OR, so
applying a dossier's events in any order, with any duplicates, yields the same state. That is what
makes at-least-once delivery and out-of-order events harmless without remembering event ids.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum

from msgspec import Struct

from schemas import events as ev
from schemas.events import (
    OBLIGATION_REQUESTED,
    PROCESSED,
    PROCESSING,
    REFUSED_AT_RECEPTION,
    RETURNED,
    STOPPED,
    SUBMITTED,
    SUPPLEMENT_REQUESTED,
    WITHDRAWN,
)
from scoring.calendar import DAY, EPOCH_ORDINAL, UTC_OFFSET_SECONDS
from scoring.ruleset import LifecycleSwitches

NO_TIME = 2**62


class Outcome(StrEnum):
    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"
    IN_PROGRESS = "in_progress"  # open, not yet past due
    OVERDUE = "overdue"  # open, past due
    EXCLUDED = "excluded"  # not a received dossier (status 1 only, 3, withdrawn before receipt)


GOOD_OUTCOMES = frozenset({Outcome.EARLY, Outcome.ON_TIME, Outcome.IN_PROGRESS})
RATING_RANK = {"not_satisfied": 0, "satisfied": 1, "very_satisfied": 2}

# Digitisation flags, OR-ed into one int.
COMPONENTS_DIGITISED = 1
RESULT_DIGITISED = 2
REUSED_DATA = 4
PERSONAL_STORAGE = 8
POPULATION_DATA = 16
RESULT_ISSUED = 32
RESULT_ELECTRONIC = 64
RETURNS_DOCUMENT = 128
PAID_ONLINE = 256
SYNCED = 512
PETITION_FILED = 1024
FEE_PAID = 2048
FEE_SET = 4096  # a fee set after receipt (financial obligation) or paid: the dossier is fee-bearing
TERMINAL_STATUSES = frozenset({REFUSED_AT_RECEPTION, WITHDRAWN, STOPPED, PROCESSED, RETURNED})  # 3, 7, 8, 9, 10
PROCESSING_STATUSES = frozenset({PROCESSING, SUPPLEMENT_REQUESTED, OBLIGATION_REQUESTED})  # 4, 5, 6
ENDED_STATUSES = (WITHDRAWN, STOPPED, PROCESSED, RETURNED)  # 7, 8, 9, 10


class Step(Struct, array_like=True, gc=False, frozen=True):
    """One processing step; merged field by field so any order of its start/end events agrees."""

    version: tuple[int, str, str, int]  # (occurred_at, officer, department, step due): max wins
    started: int
    completed: int | None = None

    @property
    def officer(self) -> str:
        return self.version[1]

    @property
    def due(self) -> int:
        return self.version[3]


class DossierState(Struct, array_like=True, gc=False):
    code: str
    received: tuple[int, str] | None = None  # version of the received record: (occurred_at, event_id)
    unit: str | None = None
    procedure: str | None = None
    channel: int = 0
    received_at: int | None = None
    due_at: int | None = None
    limit: tuple[float, str] | None = None
    fee: int = 0
    receiver: str | None = None
    status_at: dict[int, int] = {}  # earliest time each status was reached
    last_status: tuple[int, int] = (0, 0)  # (time, status): max wins
    supplement_requests: tuple[int, ...] = ()
    supplement_receipts: tuple[int, ...] = ()
    obligation_requests: tuple[int, ...] = ()
    obligation_payments: tuple[int, ...] = ()
    flags: int = 0
    rating: tuple[int, int] | None = None  # (time, rank): max wins
    reappointed: tuple[int, int] | None = None  # (time, new due): max wins
    steps: dict[str, Step] = {}
    # Every distinct re-appointed due (more than one is a finding). A tuple, not a list: the empty
    # tuple is shared, while a list per dossier is one more object for the garbage collector to walk.
    reappointed_dues: tuple[int, ...] = ()
    apology_at: int | None = None  # earliest apology letter sent

    @property
    def is_open(self) -> bool:
        return not any(status in self.status_at for status in TERMINAL_STATUSES)


OFFSETS: dict[object, int] = {}


def epoch_seconds(moment: datetime) -> int:
    """Whole epoch seconds of an aware datetime — twice as fast as `int(moment.timestamp())`,
    which matters at two calls per event."""
    zone = moment.tzinfo
    offset = OFFSETS.get(zone)
    if offset is None:
        offset = OFFSETS[zone] = int(moment.utcoffset().total_seconds())  # type: ignore[union-attr]
    return ((moment.toordinal() - EPOCH_ORDINAL) * 86400 + moment.hour * 3600 + moment.minute * 60
            + moment.second - offset)


_seconds = epoch_seconds


MAX_TIMES = 64  # per list: a dossier asked for a supplement 60,000 times is a source's bug, not a rule


def _with_time(times: tuple[int, ...], moment: int) -> tuple[int, ...]:
    """Keep the MAX_TIMES earliest distinct instants: still a join (union, then the earliest), so any
    order of events gives the same times, and a flood of one dossier's events costs no quadratic
    time. Tuples, not lists: the empty one is shared, and a tuple of ints is soon left alone by the
    garbage collector, where four lists per dossier were walked by every full collection."""
    if len(times) >= MAX_TIMES and moment >= times[-1]:
        return times
    index = bisect_left(times, moment)
    if index < len(times) and times[index] == moment:
        return times
    return (*times[:index], moment, *times[index:MAX_TIMES - 1])


def _status(state: DossierState, status: int, at: int) -> None:
    known = state.status_at.get(status)
    if known is None or at < known:
        state.status_at[status] = at
    state.last_status = max(state.last_status, (at, status))


def _received(state: DossierState, event: ev.DossierReceived, at: int) -> None:
    version = (at, event.event_id)
    received_at = _seconds(event.received_at)
    _status(state, 2, received_at)
    due_at = _seconds(event.due_at) if event.due_at else None
    limit = (event.time_limit.value, event.time_limit.unit) if event.time_limit else None
    known = state.received
    if known is not None:
        if version < known:
            return
        # Two different records under one event id at one instant (a source's bug): the greater
        # content wins, so the result is the same in any order. Computed on such a tie only.
        if version == known and _record_content(event.unit_code, event.procedure_code, event.channel, received_at,
                                                due_at, limit, event.fee_amount, event.officer_id) \
                <= _record_content(state.unit, state.procedure, state.channel, state.received_at, state.due_at,
                                   state.limit, state.fee, state.receiver):
            return
    state.received = version
    state.unit, state.procedure, state.channel = event.unit_code, event.procedure_code, event.channel
    state.received_at, state.due_at, state.limit = received_at, due_at, limit
    state.fee, state.receiver = event.fee_amount, event.officer_id


def _record_content(*fields: object) -> tuple:
    """A receipt's content as one totally ordered tuple (None below any value)."""
    return tuple((0, "") if value is None else (1, value) for value in fields)


def _status_changed(state: DossierState, event: ev.DossierStatusChanged, at: int) -> None:
    _status(state, event.status, at)
    if event.status == SUPPLEMENT_REQUESTED:
        state.supplement_requests = _with_time(state.supplement_requests, at)
    elif event.status == OBLIGATION_REQUESTED:
        state.obligation_requests = _with_time(state.obligation_requests, at)


def _supplement_requested(state: DossierState, event: ev.SupplementRequested, at: int) -> None:
    _status(state, 5, at)
    state.supplement_requests = _with_time(state.supplement_requests, at)


def _supplement_received(state: DossierState, event: ev.SupplementReceived, at: int) -> None:
    state.supplement_receipts = _with_time(state.supplement_receipts, at)


def _obligation(state: DossierState, event: ev.FinancialObligationRequested, at: int) -> None:
    _status(state, 6, at)
    state.obligation_requests = _with_time(state.obligation_requests, at)
    if event.amount > 0:
        state.flags |= FEE_SET


def _payment(state: DossierState, event: ev.PaymentMade, at: int) -> None:
    state.obligation_payments = _with_time(state.obligation_payments, at)
    if event.amount > 0:  # a payment of nothing is no payment, online or not
        state.flags |= FEE_PAID | FEE_SET | (PAID_ONLINE if event.online else 0)


def _digitisation(state: DossierState, event: ev.DigitisationRecorded, at: int) -> None:
    state.flags |= (
        (COMPONENTS_DIGITISED if event.components_digitised else 0)
        | (RESULT_DIGITISED if event.result_digitised else 0)
        | (REUSED_DATA if event.reused_digitised_data else 0)
        | (PERSONAL_STORAGE if event.personal_storage_linked else 0)
        | (POPULATION_DATA if event.population_data_used else 0)
    )


def _result(state: DossierState, event: ev.ResultIssued, at: int) -> None:
    state.flags |= (
        RESULT_ISSUED
        | (RESULT_ELECTRONIC if event.electronic else 0)
        | (RETURNS_DOCUMENT if event.returns_document else 0)
    )


def _synced(state: DossierState, event: ev.PortalSyncAcknowledged, at: int) -> None:
    state.flags |= SYNCED


def _rated(state: DossierState, event: ev.DossierRated, at: int) -> None:
    rating = (at, RATING_RANK[event.rating])
    if state.rating is None or rating > state.rating:
        state.rating = rating


def _step(state: DossierState, event: ev.ProcessingStep, at: int) -> None:
    # `epoch_seconds` written out for the usual zone: three instants per step event, a quarter of all events.
    due, started, completed = event.step_due_at, event.started_at, event.completed_at
    offset = OFFSETS.get(due.tzinfo)
    if offset is not None and started.tzinfo is due.tzinfo and (completed is None or completed.tzinfo is due.tzinfo):
        version = (at, event.officer_id, event.department, (due.toordinal() - EPOCH_ORDINAL) * DAY + due.hour * 3600
                   + due.minute * 60 + due.second - offset)
        start = ((started.toordinal() - EPOCH_ORDINAL) * DAY + started.hour * 3600 + started.minute * 60
                 + started.second - offset)
        end = None if completed is None else ((completed.toordinal() - EPOCH_ORDINAL) * DAY + completed.hour * 3600
                                              + completed.minute * 60 + completed.second - offset)
    else:
        version = (at, event.officer_id, event.department, _seconds(due))
        start, end = _seconds(started), _seconds(completed) if completed else None
    _merge_step(state, event.step_id, version, start, end)


def _merge_step(state: DossierState, step_id: str, version: tuple[int, str, str, int], started: int,
                completed: int | None) -> None:
    steps = state.steps
    known = steps.get(step_id)
    if known is None:
        steps[step_id] = Step(version, started, completed)
    else:
        if known.completed is not None and (completed is None or known.completed < completed):
            completed = known.completed
        steps[step_id] = Step(max(known.version, version), min(known.started, started), completed)


def _reappointed(state: DossierState, event: ev.DueReappointed, at: int) -> None:
    candidate = (at, _seconds(event.new_due_at))
    if state.reappointed is None or candidate > state.reappointed:
        state.reappointed = candidate
    if candidate[1] not in state.reappointed_dues:  # three earliest: one may be the original due
        state.reappointed_dues = tuple(sorted((*state.reappointed_dues, candidate[1])))[:3]
    if event.apology_sent_at is not None:
        apology = _seconds(event.apology_sent_at)
        if state.apology_at is None or apology < state.apology_at:
            state.apology_at = apology


def _petition_linked(state: DossierState, event: ev.PetitionLinked, at: int) -> None:
    state.flags |= PETITION_FILED


REDUCERS: dict[type, Callable[[DossierState, ev.DossierEvent, int], None]] = {
    ev.DossierReceived: _received,
    ev.DossierStatusChanged: _status_changed,
    ev.SupplementRequested: _supplement_requested,
    ev.SupplementReceived: _supplement_received,
    ev.FinancialObligationRequested: _obligation,
    ev.PaymentMade: _payment,
    ev.DigitisationRecorded: _digitisation,
    ev.ResultIssued: _result,
    ev.PortalSyncAcknowledged: _synced,
    ev.DossierRated: _rated,
    ev.ProcessingStep: _step,
    ev.DueReappointed: _reappointed,
    ev.PetitionLinked: _petition_linked,
}


def reduce(state: DossierState | None, event: ev.DossierEvent, at: int | None = None) -> DossierState:
    """Fold one event into a dossier's state. The state passed in is updated and returned.
    `at` is the event's occurred_at in epoch seconds, when the caller already has it."""
    if state is None:
        state = DossierState(event.dossier_code)
    REDUCERS[type(event)](state, event, _seconds(event.occurred_at) if at is None else at)
    return state


# --- the on-time rule ---------------------------------------------------------------------------


def end_time(state: DossierState, cutoff: int) -> int | None:
    """Status 9, else 10, else the earlier of 8 and 7 (7 only once received) — at or before cutoff."""
    # Written out, with the codes as literals (PROCESSED 9, RETURNED 10, STOPPED 8, WITHDRAWN 7):
    # this runs several times per dossier per batch.
    status_at = state.status_at
    at = status_at.get(9)
    if at is not None and at <= cutoff:
        return at
    at = status_at.get(10)
    if at is not None and at <= cutoff:
        return at
    if state.received_at is None:
        return None
    end = status_at.get(8)
    if end is not None and end > cutoff:
        end = None
    withdrawn = status_at.get(7)
    if withdrawn is not None and withdrawn <= cutoff and (end is None or withdrawn < end):
        end = withdrawn
    return end


def supplement_requests(state: DossierState) -> Sequence[int]:
    """The distinct supplement requests. Sources report one request both as a status change to 5 and
    as a `supplement_requested` event, and may resend it: request instants with no supplement
    receipt between them are one request, the earliest (the applicant cannot have been asked twice
    before answering once)."""
    requests = state.supplement_requests
    if len(requests) < 2:
        return requests
    receipts = state.supplement_receipts
    distinct = [requests[0]]
    index = 0
    for requested in requests[1:]:
        while index < len(receipts) and receipts[index] <= distinct[-1]:
            index += 1
        if index < len(receipts) and receipts[index] <= requested:
            distinct.append(requested)
    return distinct


def _paused(requests: Sequence[int], resumes: Sequence[int], until: int) -> tuple[int, int | None]:
    """Seconds paused by request→resume pairs before `until`, and the start of a pause still open."""
    paused, index = 0, 0
    for requested in requests:
        if requested > until:
            break
        while index < len(resumes) and resumes[index] < requested:
            index += 1
        if index < len(resumes) and resumes[index] <= until:
            paused += resumes[index] - requested
            index += 1
        else:
            return paused, requested
    return paused, None


def judged_at(state: DossierState, moment: int, switches: LifecycleSwitches) -> int:
    """The instant compared with the due date: applicant time taken out (DOMAIN.md §3.3)."""
    requests = state.supplement_requests  # the usual dossier has at most one: no call to merge them
    paused, pending = _paused(requests if len(requests) < 2 else supplement_requests(state),
                              state.supplement_receipts, moment)
    if switches.financial_obligation_clock == "paused":
        obligation_paused, obligation_pending = _paused(state.obligation_requests, state.obligation_payments, moment)
        paused += obligation_paused
        if obligation_pending is not None and (pending is None or obligation_pending < pending):
            pending = obligation_pending
    return (pending if pending is not None else moment) - paused


def reappointments(state: DossierState) -> tuple[int, ...]:
    """The re-appointed dues that differ from the original: a "re-appointment" to the due the dossier
    already had changes nothing (sources that resend whole records, as the DVCQG sync does, state
    their current due on every record: only a changed one is a re-appointment)."""
    dues = state.reappointed_dues
    return tuple(due for due in dues if due != state.due_at)[:2] if dues else dues


def due_for_scoring(state: DossierState, switches: LifecycleSwitches) -> int | None:
    if switches.score_against_due == "reappointed" and state.reappointed is not None:
        return state.reappointed[1]
    return state.due_at


def is_excluded(state: DossierState, cutoff: int) -> bool:
    """Not a received dossier (yet). A status 3 (refused at reception) for a dossier that has a
    receipt is an impossible transition: it is reported, and does not undo the receipt."""
    received_at = state.received_at
    return received_at is None or received_at > cutoff


def classify(state: DossierState, cutoff: int, switches: LifecycleSwitches,
             fallback_due: int | None = None) -> Outcome:
    """Classify a dossier as of `cutoff` (a period end, or now for the current period)."""
    if is_excluded(state, cutoff):
        return Outcome.EXCLUDED
    due = due_for_scoring(state, switches)
    if due is None:
        due = fallback_due if fallback_due is not None else NO_TIME
    end = end_time(state, cutoff)
    if end is None:
        return Outcome.IN_PROGRESS if judged_at(state, cutoff, switches) <= due else Outcome.OVERDUE
    if switches.multiple_supplements_late and len(state.supplement_requests) > 1 \
            and sum(1 for t in supplement_requests(state) if t <= end) > 1:
        return Outcome.LATE
    effective = judged_at(state, end, switches)
    if switches.compare == "date":
        effective_day, due_day = (effective + UTC_OFFSET_SECONDS) // DAY, (due + UTC_OFFSET_SECONDS) // DAY
        if effective_day > due_day:
            return Outcome.LATE
        return Outcome.EARLY if effective_day < due_day else Outcome.ON_TIME
    if effective > due:
        return Outcome.LATE
    early = (effective + UTC_OFFSET_SECONDS) // DAY < (due + UTC_OFFSET_SECONDS) // DAY
    return Outcome.EARLY if early else Outcome.ON_TIME


def turns_overdue_at(state: DossierState, after: int, switches: LifecycleSwitches,
                     fallback_due: int | None = None) -> int | None:
    """The first instant after `after` at which an open dossier becomes overdue with no new event."""
    if is_excluded(state, after) or end_time(state, after) is not None:
        return None
    due = due_for_scoring(state, switches)
    due = due if due is not None else fallback_due
    if due is None:
        return None
    if judged_at(state, after, switches) > due:
        return None
    requests = state.supplement_requests
    paused, pending = _paused(requests if len(requests) < 2 else supplement_requests(state),
                              state.supplement_receipts, after)
    if pending is not None:
        return None  # waiting for the applicant: the clock is stopped
    if switches.financial_obligation_clock == "paused":
        obligation_paused, obligation_pending = _paused(state.obligation_requests, state.obligation_payments, after)
        if obligation_pending is not None:
            return None
        paused += obligation_paused
    return due + paused + 1


def transition_problems(state: DossierState) -> tuple[str, ...]:
    """Impossible transitions recorded in the state (DOMAIN.md §3): a refusal at reception of a
    received dossier, an end before the receipt, a processing status after the dossier ended, and
    facts of a dossier never received. Order-independent: computed from the merged state, not from
    arrival order."""
    status_at = state.status_at
    received_at = state.received_at
    if received_at is None:
        facts = (state.steps or state.flags or state.rating or state.supplement_requests or state.supplement_receipts
                 or state.obligation_requests or state.obligation_payments or state.reappointed_dues)
        if facts or any(status not in (SUBMITTED, REFUSED_AT_RECEPTION, WITHDRAWN) for status in status_at):
            return ("never_received",)
        return ()
    # Written out (no comprehension): this runs once per dossier per batch that changes its status.
    end = None
    for status in ENDED_STATUSES:
        at = status_at.get(status)
        if at is not None and (end is None or at < end):
            end = at
    refused = REFUSED_AT_RECEPTION in status_at
    if not refused and end is None:
        return ()  # open and never refused: no transition of it can be impossible yet
    problems = []
    if refused:
        problems.append("refused_after_receipt")
    if end is not None:
        if end < received_at:
            problems.append("ended_before_receipt")
        last_at, last = state.last_status
        after_end = last in PROCESSING_STATUSES and last_at > end
        for status in PROCESSING_STATUSES:
            if not after_end and status_at.get(status, 0) > end:
                after_end = True
        for requests in (state.supplement_requests, state.obligation_requests):
            if not after_end and requests and requests[-1] > end:
                after_end = True
        if after_end:
            problems.append("status_after_end")
    return tuple(problems)


def next_recorded_instant(state: DossierState, after: int) -> int | None:
    """The earliest instant recorded in the state that lies after `after` (events ahead of "as of")."""
    instants = [*state.status_at.values(), *state.supplement_requests, *state.supplement_receipts,
                *state.obligation_requests, *state.obligation_payments]
    if state.rating is not None:
        instants.append(state.rating[0])
    for step in state.steps.values():
        instants.append(step.started)
        if step.completed is not None:
            instants.append(step.completed)
    future = [moment for moment in instants if moment > after]
    return min(future) if future else None
