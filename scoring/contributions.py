"""What one dossier or petition adds to the tallies, per owner and period (DOMAIN.md §2, §3.7, §5).

A contribution is a few parts; a part is a tuple of blocks (owner, period keys, counter names) that
add one to every (owner, period, counter) pair; a name may repeat (an officer with two late steps).
Owners are unit codes, or `UNIT|OFFICER` for officer tallies. Counters `CODE.n` / `CODE.d` feed an
indicator's numerator and denominator; `P.kind|PROCEDURE` count dossiers per procedure (for the
indicators that count procedures); `out.*` count outcomes. Parts are memoised by the facts they
depend on, and a dossier's active and steps parts are reused until an event or the passing of its
next_change() instant can change them.
Tallies are kept per own unit; ancestors pool them when scores are read (see `scoring.rollup`),
because indicators that count distinct procedures cannot be pooled from raw counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from msgspec import Struct

from schemas import events as ev
from scoring import lifecycle as lc
from scoring import quality
from scoring.calendar import WorkingCalendar, at, local
from scoring.directory import Directory
from scoring.lifecycle import DossierState, Outcome
from scoring.periods import Period, month_index, period_keys_at_month, periods_between, periods_of
from scoring.ruleset import Ruleset

Block = tuple[str, tuple[str, ...], tuple[str, ...]]  # (owner, period keys, counter names): +1 for each pair
Part = tuple[Block, ...]
Contribution = tuple[Part, ...]
MEMO_LIMIT = 400_000
NOT_SATISFIED = 0
BAD_OUTCOMES = frozenset({Outcome.LATE, Outcome.OVERDUE})


@dataclass
class Context:
    """Everything a contribution depends on besides the state and the instant."""

    ruleset: Ruleset
    calendar: WorkingCalendar
    directory: Directory
    memo: dict[tuple, Part] = field(default_factory=dict)

    def fallback_due(self, state: DossierState) -> int | None:
        if state.due_at is not None or state.received_at is None:
            return None
        return self.directory.legal_due(self.calendar, state.unit, state.procedure, state.channel,
                                        state.received_at, state.limit)


def _pair(code: str, hit: bool) -> tuple[str, ...]:
    return (f"{code}.d", f"{code}.n") if hit else (f"{code}.d",)


def _block(owner: str, periods: Iterable[Period], names: Iterable[str]) -> Block:
    return owner, tuple(period.key for period in periods), tuple(sorted(names))


def _received_counters(channel: int, fee_bearing: bool, flags: int, procedure: str | None,
                       result_needed: bool) -> list[str]:
    # 4.2: with a result due (the dossier completed, or a result issued, for a procedure that returns
    # a document — as 4.1 judges it), the result must be digitised too.
    counters = [
        *_pair("DOSSIER_SYNC", bool(flags & lc.SYNCED)),
        *_pair("ONLINE_DOSSIER_SHARE", channel == 2),
        *_pair("SO_HOA_GIAY_TO_GIAI_QUYET", bool(flags & lc.COMPONENTS_DIGITISED)
               and (not result_needed or bool(flags & lc.RESULT_DIGITISED))),
        *_pair("REUSED_DIGITIZED_DATA", bool(flags & lc.REUSED_DATA)),
        *_pair("SYNCED_WITH_DVCQG_PERSONAL_STORAGE", bool(flags & lc.PERSONAL_STORAGE)),
        *_pair("CITIZEN_DATA_CONNECTED_DOSSIER", bool(flags & lc.POPULATION_DATA)),
        "received",
    ]
    if fee_bearing:
        counters += [*_pair("PAY_DOSSIER_ONLINE", bool(flags & lc.PAID_ONLINE)), f"P.fee|{procedure}"]
    if flags & lc.PAID_ONLINE:
        counters.append(f"P.paid_online|{procedure}")
    if flags & lc.POPULATION_DATA:
        counters.append(f"P.population|{procedure}")
    if channel == 2:
        counters.append(f"P.online|{procedure}")
    return counters


ORIGINAL_RESULT_NAMES = {hit: tuple(sorted(_pair("ORIGINAL_RESULT_AVAILABLE", hit))) for hit in (False, True)}
STEPS_ON_TIME, STEPS_LATE, STEPS_OPEN_LATE = ("steps_on_time",), ("steps_late",), ("steps_open_late",)
RECEIVED_FLAGS = (lc.SYNCED | lc.COMPONENTS_DIGITISED | lc.RESULT_ISSUED | lc.RESULT_DIGITISED | lc.REUSED_DATA
                  | lc.PERSONAL_STORAGE | lc.POPULATION_DATA | lc.PAID_ONLINE)


def returns_document(state: DossierState, directory: Directory) -> bool:
    """4.1 and 4.2 follow the catalogue: a procedure that returns a document needs an electronic
    result whether or not a result event came. Only a procedure missing from the catalogue is
    judged by its result events."""
    procedure = directory.procedures.get(state.procedure) if state.procedure is not None else None
    if procedure is not None:
        return procedure.returns_document
    return bool(state.flags & lc.RETURNS_DOCUMENT)


def holder_at(state: DossierState, moment: int) -> str | None:
    """The officer holding the dossier at `moment`: the open step started last, else the receiver."""
    best: tuple[int, str] | None = None
    for step in state.steps.values():
        if step.started <= moment and (step.completed is None or step.completed > moment):
            candidate = (step.started, step.officer)
            if best is None or candidate > best:
                best = candidate
    return best[1] if best else state.receiver


def accountable_officer(state: DossierState, moment: int) -> str | None:
    """Who a late dossier is charged to: the first step that ran late, else its holder then."""
    late = sorted((step.due, step.officer) for step in state.steps.values()
                  if step.due <= moment and (step.completed is None or step.completed > step.due))
    return late[0][1] if late else holder_at(state, moment)


def _memo(context: Context, key: tuple, build: Callable[[], Part]) -> Part:
    """Parts are built once per distinct set of facts and shared: most dossiers repeat a few shapes."""
    part = context.memo.get(key)
    if part is None:
        if len(context.memo) >= MEMO_LIMIT:
            context.memo.clear()
        part = context.memo[key] = build()
    return part


def _active_part(unit: str, pieces: tuple[tuple[str, Outcome, bool, str | None], ...]) -> Part:
    blocks: list[Block] = []
    for period_key, outcome, satisfied, officer in pieces:
        names = ["ON_TIME.d", "DOSSIER_RECEIVING_SATISFACTION.d", f"out.{outcome.value}"]
        if outcome in lc.GOOD_OUTCOMES:
            names.append("ON_TIME.n")
        if satisfied:
            names.append("DOSSIER_RECEIVING_SATISFACTION.n")
        blocks.append((unit, (period_key,), tuple(sorted(names))))
        if officer is not None:
            verdict = "overdue_held" if outcome is Outcome.OVERDUE else "late_completed"
            blocks.append((f"{unit}|{officer}", (period_key,), ("missed", verdict)))
    return tuple(blocks)


# The parts of a dossier's contribution, as bits: which ones an event can change.
RECEIVED_PART, COMPLETED_PART, ACTIVE_PART, STEPS_PART, RECORD_PART, TRANSITIONS_PART = 1, 2, 4, 8, 16, 32
ALL_PARTS = 63
PART_COUNT = 6
TIME_DRIVEN_PARTS = ACTIVE_PART | STEPS_PART  # the only parts that change as "as of" passes next_change()
PARTS_CHANGED_BY: dict[type, int] = {
    ev.DossierReceived: ALL_PARTS,
    ev.DossierStatusChanged: RECEIVED_PART | COMPLETED_PART | ACTIVE_PART | TRANSITIONS_PART,
    ev.SupplementRequested: ACTIVE_PART | TRANSITIONS_PART,
    ev.SupplementReceived: ACTIVE_PART,
    ev.FinancialObligationRequested: RECEIVED_PART | ACTIVE_PART | TRANSITIONS_PART,
    ev.PaymentMade: RECEIVED_PART | ACTIVE_PART,
    ev.DigitisationRecorded: RECEIVED_PART,
    ev.ResultIssued: RECEIVED_PART | COMPLETED_PART,
    ev.PortalSyncAcknowledged: RECEIVED_PART,
    ev.DossierRated: ACTIVE_PART,
    ev.ProcessingStep: ACTIVE_PART | STEPS_PART,
    ev.DueReappointed: ACTIVE_PART | RECORD_PART,
    ev.PetitionLinked: ACTIVE_PART,
}


def dossier_contribution(state: DossierState, as_of: int, context: Context, previous: Contribution = (),
                         stale: int = ALL_PARTS) -> Contribution:
    """Six parts: counts by receipt period, by completion period, per active period, per officer
    step, and data-quality findings by receipt period — of the record (dues, catalogue), and of its
    status transitions.

    With `previous` (the contribution last computed for this dossier), the active, steps and
    findings parts are reused unless their bit is in `stale` (the receipt and completion parts are
    cheap and always recomputed): the caller vouches that no event since changed them and that
    "as of" has not reached the dossier's next_change().
    """
    received_at, unit = state.received_at, state.unit
    if received_at is None or unit is None or lc.is_excluded(state, as_of):
        return ()
    received_month = month_index(received_at)
    if previous and len(previous) == PART_COUNT:
        active = previous[2] if not stale & ACTIVE_PART else _active(state, unit, as_of, context)
        steps = previous[3] if not stale & STEPS_PART else _steps(state, unit, as_of, context)
        record = previous[4] if not stale & RECORD_PART else _findings(
            quality.record_findings(state, context.directory, context.calendar), unit, received_month, context)
        transitions = previous[5] if not stale & TRANSITIONS_PART else _findings(
            lc.transition_problems(state), unit, received_month, context)
    else:
        active, steps = _active(state, unit, as_of, context), _steps(state, unit, as_of, context)
        record = _findings(quality.record_findings(state, context.directory, context.calendar), unit,
                           received_month, context)
        transitions = _findings(lc.transition_problems(state), unit, received_month, context)
    flags, channel, procedure = state.flags, state.channel, state.procedure
    fee_bearing, received_flags = state.fee > 0 or bool(flags & lc.FEE_SET), flags & RECEIVED_FLAGS
    document = returns_document(state, context.directory)
    completed_by = state.status_at.get(9) or state.status_at.get(10)
    is_completed = completed_by is not None and completed_by <= as_of
    result_needed = document and (is_completed or bool(flags & lc.RESULT_ISSUED))
    names = _memo(context, ("rn", procedure, channel, fee_bearing, received_flags, result_needed),
                  lambda: tuple(sorted(_received_counters(channel, fee_bearing, flags, procedure, result_needed))))
    received = ((unit, period_keys_at_month(received_month), names),)
    completed: Part = ()
    if is_completed and document:
        electronic = bool(flags & lc.RESULT_ELECTRONIC)
        completed = ((unit, period_keys_at_month(month_index(completed_by)),
                      ORIGINAL_RESULT_NAMES[electronic]),)
    return received, completed, active, steps, record, transitions


def _findings(found: tuple[str, ...], unit: str, received_month: int, context: Context) -> Part:
    if not found:
        return ()
    return _memo(context, ("q", unit, received_month, found),
                 lambda: ((unit, period_keys_at_month(received_month), quality.counter_names(found)),))


def _active(state: DossierState, unit: str, as_of: int, context: Context) -> Part:
    switches = context.ruleset.lifecycle
    fallback_due = context.fallback_due(state)
    end = lc.end_time(state, as_of)
    rating = state.rating
    petitioned = bool(state.flags & lc.PETITION_FILED)
    outcomes: dict[int, Outcome] = {}
    pieces = []
    for period in periods_between(state.received_at, end if end is not None else as_of):  # type: ignore[arg-type]
        cutoff = min(period.end, as_of)
        # A closed dossier's outcome is the same at every cutoff after its end: classify it once.
        judged = as_of if end is not None and cutoff >= end else cutoff
        outcome = outcomes.get(judged)
        if outcome is None:
            outcome = outcomes[judged] = lc.classify(state, judged, switches, fallback_due)
        # 5.4 re-scores a past period when a rating (or a petition) comes after it: a period is
        # judged with every rating known as of "as of", as petitions always were.
        unhappy = rating is not None and rating[1] == NOT_SATISFIED and rating[0] <= as_of
        bad = outcome in BAD_OUTCOMES
        officer = None
        if bad:
            officer = (holder_at(state, cutoff) if outcome is Outcome.OVERDUE
                       else accountable_officer(state, end or cutoff))
        pieces.append((period.key, outcome, not (bad or unhappy or petitioned), officer))
    key = ("a", unit, tuple(pieces))
    return _memo(context, key, lambda: _active_part(unit, key[2]))


def _steps(state: DossierState, unit: str, as_of: int, context: Context) -> Part:
    """Each step's verdict by officer and month. Memoised on those verdicts, which many dossiers
    share, not on the steps themselves: their instants make every dossier's steps unique."""
    if not state.steps:
        return ()
    facts = []
    for step in state.steps.values():
        completed = step.completed
        if completed is not None and completed <= as_of:
            facts.append((step.officer, month_index(completed), STEPS_ON_TIME if completed <= step.due else STEPS_LATE))
        elif step.due < as_of:
            facts.append((step.officer, month_index(as_of), STEPS_OPEN_LATE))
    if not facts:
        return ()
    facts.sort()
    key = ("s", unit, tuple(facts))
    return _memo(context, key, lambda: tuple((f"{unit}|{officer}", period_keys_at_month(month), verdict)
                                             for officer, month, verdict in key[2]))


def next_change(state: DossierState, as_of: int, context: Context) -> int | None:
    """The next instant when this dossier's contribution changes with no new event: it turns
    overdue, an open step passes its deadline, a new month starts while it is open — or an instant it
    already records comes due."""
    recorded = lc.next_recorded_instant(state, as_of)
    if state.received_at is None or lc.is_excluded(state, as_of) or lc.end_time(state, as_of) is not None:
        if state.received_at is not None and state.received_at > as_of:
            return state.received_at
        return recorded
    candidates = [periods_of(as_of)[0].end + 1]
    if recorded is not None:
        candidates.append(recorded)
    overdue = lc.turns_overdue_at(state, as_of, context.ruleset.lifecycle, context.fallback_due(state))
    if overdue is not None:
        candidates.append(overdue)
    candidates += [step.due + 1 for step in state.steps.values()
                   if step.completed is None and step.due >= as_of]
    return min(candidates)


def diff(old: Contribution, new: Contribution, blocks: dict[Block, int]) -> None:
    """Count into `blocks` the change from one contribution to the next, block by block; parts that
    did not change (the same shared object, usually) cost one comparison."""
    if len(old) != len(new):  # one side empty (a dossier first counted, or excluded): pad it
        width = max(len(old), len(new))
        old, new = (*old, *((),) * (width - len(old))), (*new, *((),) * (width - len(new)))
    for before, after in zip(old, new, strict=True):
        if before is after or before == after:
            continue
        for block in before:
            blocks[block] = blocks.get(block, 0) - 1
        for block in after:
            blocks[block] = blocks.get(block, 0) + 1


def count_blocks(blocks: dict[Block, int], contribution: Contribution) -> None:
    for part in contribution:
        for block in part:
            blocks[block] = blocks.get(block, 0) + 1


def add_blocks(pairs: dict[tuple[str, str], dict[str, int]], blocks: dict[Block, int]) -> set[tuple[str, str]]:
    """Add block counts into counters kept per (owner, period), dropping counters that reach zero;
    returns the pairs that changed. Many dossiers share a block, so this runs once per distinct
    block rather than once per dossier."""
    changed: set[tuple[str, str]] = set()
    for (owner, periods, names), count in blocks.items():
        if not count:
            continue
        for period in periods:
            pair = (owner, period)
            counters = pairs.get(pair)
            if counters is None:
                counters = pairs[pair] = {}
            for name in names:
                value = counters.get(name, 0) + count
                if value:
                    counters[name] = value
                else:
                    del counters[name]
            if not counters:
                del pairs[pair]
            changed.add(pair)
    return changed


# --- petitions (PAKN) ---------------------------------------------------------------------------


class PetitionState(Struct, array_like=True, gc=False):
    petition_id: str
    received: tuple[int, str] | None = None
    unit: str | None = None
    about: str = "other"
    received_at: int | None = None
    answered_at: int | None = None
    rating: tuple[int, bool] | None = None
    reraised: bool = False
    refused_at: int | None = None  # each instant below is the earliest seen
    supplement_at: int | None = None
    awaiting_publication_at: int | None = None
    published_at: int | None = None


_EARLIEST_FIELD = {ev.PetitionAnswered: "answered_at", ev.PetitionRefused: "refused_at",
                   ev.PetitionSupplementRequested: "supplement_at",
                   ev.PetitionAwaitingPublication: "awaiting_publication_at", ev.PetitionPublished: "published_at"}


def reduce_petition(state: PetitionState | None, event: ev.PetitionEvent) -> PetitionState:
    if state is None:
        state = PetitionState(event.petition_id)
    moment = lc.epoch_seconds(event.occurred_at)
    earliest = _EARLIEST_FIELD.get(type(event))
    if earliest is not None:
        known = getattr(state, earliest)
        if known is None or moment < known:
            setattr(state, earliest, moment)
    elif isinstance(event, ev.PetitionReceived):
        version = ev.record_version(event, moment)
        if state.received is None or version > state.received:
            state.received, state.unit, state.about = version, event.unit_code, event.about
            state.received_at = lc.epoch_seconds(event.received_at)
    elif isinstance(event, ev.PetitionRated):
        rating = (moment, event.satisfied)
        if state.rating is None or rating > state.rating:
            state.rating = rating
    elif isinstance(event, ev.PetitionReraised):
        state.reraised = True
    return state


def _working_days_after(state: PetitionState, start: int, days: int, context: Context) -> int:
    last_day = context.calendar.add_working_days(local(start).date(), days)
    return at(last_day, context.directory.hours(state.unit).closing)


def petition_deadline(state: PetitionState, context: Context) -> int:
    assert state.received_at is not None
    return _working_days_after(state, state.received_at, context.ruleset.petition_answer_working_days, context)


def petition_handled_at(state: PetitionState, cutoff: int) -> int | None:
    """When handling ended by `cutoff`: answered, or refused (which ends it too)."""
    ends = [t for t in (state.answered_at, state.refused_at) if t is not None and t <= cutoff]
    return min(ends) if ends else None


def petition_on_time(state: PetitionState, cutoff: int, context: Context) -> bool:
    """Every deadline of DOMAIN.md §6 met, judged with what is known at `cutoff`: refusal within 2
    working days, first supplement request within 5, answer within 15, publication within 2 after
    waiting to publish; a step not yet taken is late only once its deadline has passed."""
    assert state.received_at is not None
    ruleset = context.ruleset
    handled = petition_handled_at(state, cutoff)
    if handled is not None and handled == state.refused_at:
        limit = _working_days_after(state, state.received_at, ruleset.petition_refusal_working_days, context)
    else:
        limit = petition_deadline(state, context)
    if (handled if handled is not None else cutoff) > limit:
        return False
    supplement = state.supplement_at
    if supplement is not None and supplement <= cutoff and supplement > _working_days_after(
            state, state.received_at, ruleset.petition_supplement_working_days, context):
        return False
    awaiting = state.awaiting_publication_at
    if awaiting is not None and awaiting <= cutoff:
        published = state.published_at if state.published_at is not None and state.published_at <= cutoff else None
        deadline = _working_days_after(state, awaiting, ruleset.petition_publication_working_days, context)
        if (published if published is not None else cutoff) > deadline:
            return False
    return True


def petition_contribution(state: PetitionState, as_of: int, context: Context) -> Contribution:
    if state.received_at is None or state.unit is None or state.received_at > as_of:
        return ()
    handled = petition_handled_at(state, as_of)
    unit = state.unit
    blocks: list[Block] = []
    for period in periods_between(state.received_at, handled if handled is not None else as_of):
        on_time = petition_on_time(state, min(period.end, as_of), context)
        blocks.append(_block(unit, (period,), _pair("PETITION_PROCESSING_ON_TIME", on_time)))
    late = not petition_on_time(state, as_of, context)
    disliked = state.rating is not None and state.rating[0] <= as_of and not state.rating[1]
    blocks.append(_block(unit, periods_of(state.received_at), (
        *_pair("PETITION_HANDLING_SATISFACTION", not (late or disliked or state.reraised)),
        *_pair("PETITION_CLASSIFICATION_TTHC", state.about == "procedure"),
        *_pair("PETITION_CLASSIFICATION_STAFF", state.about == "officer"),
    )))
    return (tuple(blocks),)


def petition_next_change(state: PetitionState, as_of: int, context: Context) -> int | None:
    if state.received_at is None:
        return None
    if state.received_at > as_of:
        return state.received_at
    recorded = (state.answered_at, state.refused_at, state.supplement_at, state.awaiting_publication_at,
                state.published_at, state.rating[0] if state.rating else None)
    candidates = [t for t in recorded if t is not None and t > as_of]
    awaiting = state.awaiting_publication_at
    if awaiting is not None and awaiting <= as_of and (state.published_at is None or state.published_at > as_of):
        publish_by = _working_days_after(state, awaiting, context.ruleset.petition_publication_working_days, context)
        if publish_by >= as_of:
            candidates.append(publish_by + 1)
    if petition_handled_at(state, as_of) is None:
        candidates.append(periods_of(as_of)[0].end + 1)
        deadline = petition_deadline(state, context)
        if deadline >= as_of:
            candidates.append(deadline + 1)
    return min(candidates) if candidates else None
