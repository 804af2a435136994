"""What one dossier or petition adds to the tallies, per owner and period (DOMAIN.md §2, §3.7, §5).

A contribution maps (owner, period key) to a sorted tuple of counter names; a name may repeat (an
officer with two late steps). Owners are unit codes, or `UNIT|OFFICER` for officer tallies. Counters
`CODE.n` / `CODE.d` feed an indicator's numerator and denominator; `P.kind|PROCEDURE` count
dossiers per procedure (for the indicators that count procedures); `out.*` count outcomes.
Tallies are kept per own unit; ancestors pool them when scores are read (see `scoring.rollup`),
because indicators that count distinct procedures cannot be pooled from raw counters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from msgspec import Struct

from schemas import events as ev
from scoring import lifecycle as lc
from scoring.calendar import WorkingCalendar, at, local
from scoring.directory import Directory
from scoring.lifecycle import DossierState, Outcome
from scoring.periods import Period, periods_between, periods_of
from scoring.ruleset import Ruleset

Contribution = dict[tuple[str, str], tuple[str, ...]]
NOT_SATISFIED = 0
BAD_OUTCOMES = frozenset({Outcome.LATE, Outcome.OVERDUE})


@dataclass
class Context:
    """Everything a contribution depends on besides the state and the instant."""

    ruleset: Ruleset
    calendar: WorkingCalendar
    directory: Directory

    def fallback_due(self, state: DossierState) -> int | None:
        if state.due_at is not None or state.received_at is None:
            return None
        return self.directory.legal_due(self.calendar, state.unit, state.procedure, state.channel,
                                        state.received_at, state.limit)


def _pair(code: str, hit: bool) -> tuple[str, ...]:
    return (f"{code}.d", f"{code}.n") if hit else (f"{code}.d",)


def _received_counters(state: DossierState) -> list[str]:
    flags, procedure = state.flags, state.procedure
    counters = [
        *_pair("DOSSIER_SYNC", bool(flags & lc.SYNCED)),
        *_pair("ONLINE_DOSSIER_SHARE", state.channel == 2),
        *_pair("SO_HOA_GIAY_TO_GIAI_QUYET", bool(flags & lc.COMPONENTS_DIGITISED)
               and (not flags & lc.RESULT_ISSUED or bool(flags & lc.RESULT_DIGITISED))),
        *_pair("REUSED_DIGITIZED_DATA", bool(flags & lc.REUSED_DATA)),
        *_pair("SYNCED_WITH_DVCQG_PERSONAL_STORAGE", bool(flags & lc.PERSONAL_STORAGE)),
        *_pair("CITIZEN_DATA_CONNECTED_DOSSIER", bool(flags & lc.POPULATION_DATA)),
        "received",
    ]
    if state.fee > 0:
        counters += [*_pair("PAY_DOSSIER_ONLINE", bool(flags & lc.PAID_ONLINE)), f"P.fee|{procedure}"]
    if flags & lc.PAID_ONLINE:
        counters.append(f"P.paid_online|{procedure}")
    if flags & lc.POPULATION_DATA:
        counters.append(f"P.population|{procedure}")
    if state.channel == 2:
        counters.append(f"P.online|{procedure}")
    return counters


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


def dossier_contribution(state: DossierState, as_of: int, context: Context) -> Contribution:
    received_at, unit = state.received_at, state.unit
    if received_at is None or unit is None or lc.is_excluded(state, as_of):
        return {}
    switches = context.ruleset.lifecycle
    fallback_due = context.fallback_due(state)
    end = lc.end_time(state, as_of)
    found: dict[tuple[str, str], list[str]] = {}

    def add(owner: str, period: Period, names: list[str] | tuple[str, ...]) -> None:
        found.setdefault((owner, period.key), []).extend(names)

    for period in periods_of(received_at):
        add(unit, period, _received_counters(state))
    completed_by = state.status_at.get(9) or state.status_at.get(10)
    if completed_by is not None and completed_by <= as_of and state.flags & lc.RETURNS_DOCUMENT:
        for period in periods_of(completed_by):
            add(unit, period, _pair("ORIGINAL_RESULT_AVAILABLE", bool(state.flags & lc.RESULT_ELECTRONIC)))
    rated_unhappy = state.rating is not None and state.rating[1] == NOT_SATISFIED
    outcomes: dict[int, Outcome] = {}
    for period in periods_between(received_at, end if end is not None else as_of):
        cutoff = min(period.end, as_of)
        outcome = outcomes.get(cutoff)
        if outcome is None:
            outcome = outcomes[cutoff] = lc.classify(state, cutoff, switches, fallback_due)
        unhappy = rated_unhappy and state.rating[0] <= cutoff  # type: ignore[index]
        add(unit, period, (
            *_pair("ON_TIME", outcome in lc.GOOD_OUTCOMES),
            *_pair("DOSSIER_RECEIVING_SATISFACTION", not (
                outcome in BAD_OUTCOMES or unhappy or state.flags & lc.PETITION_FILED)),
            f"out.{outcome.value}",
        ))
        if outcome in BAD_OUTCOMES:
            officer = (holder_at(state, cutoff) if outcome is Outcome.OVERDUE
                       else accountable_officer(state, end or cutoff))
            if officer:
                add(f"{unit}|{officer}", period, ("missed", "overdue_held" if outcome is Outcome.OVERDUE
                                                  else "late_completed"))
    for step in state.steps.values():
        if step.completed is not None and step.completed <= as_of:
            verdict = "steps_on_time" if step.completed <= step.due else "steps_late"
            for period in periods_of(step.completed):
                add(f"{unit}|{step.officer}", period, (verdict,))
        elif step.due < as_of:
            for period in periods_of(as_of):
                add(f"{unit}|{step.officer}", period, ("steps_open_late",))
    return {key: tuple(sorted(names)) for key, names in found.items()}


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


def diff(old: Contribution, new: Contribution) -> dict[tuple[str, str, str], int]:
    """Counter deltas (owner, period, counter) → change, from one contribution to the next."""
    delta: dict[tuple[str, str, str], int] = {}
    for key in old.keys() | new.keys():
        before, after = old.get(key, ()), new.get(key, ())
        if before == after:
            continue
        change = Counter(after)
        change.subtract(before)
        for name, amount in change.items():
            if amount:
                delta[(*key, name)] = amount
    return delta


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


def reduce_petition(state: PetitionState | None, event: ev.PetitionEvent) -> PetitionState:
    if state is None:
        state = PetitionState(event.petition_id)
    moment = int(event.occurred_at.timestamp())
    if isinstance(event, ev.PetitionReceived):
        version = (moment, event.event_id)
        if state.received is None or version > state.received:
            state.received, state.unit, state.about = version, event.unit_code, event.about
            state.received_at = int(event.received_at.timestamp())
    elif isinstance(event, ev.PetitionAnswered):
        if state.answered_at is None or moment < state.answered_at:
            state.answered_at = moment
    elif isinstance(event, ev.PetitionRated):
        rating = (moment, event.satisfied)
        if state.rating is None or rating > state.rating:
            state.rating = rating
    elif isinstance(event, ev.PetitionReraised):
        state.reraised = True
    return state


def petition_deadline(state: PetitionState, context: Context) -> int:
    assert state.received_at is not None
    received_day = local(state.received_at).date()
    last_day = context.calendar.add_working_days(received_day, context.ruleset.petition_answer_working_days)
    return at(last_day, context.directory.hours(state.unit).closing)


def petition_contribution(state: PetitionState, as_of: int, context: Context) -> Contribution:
    if state.received_at is None or state.unit is None or state.received_at > as_of:
        return {}
    deadline = petition_deadline(state, context)
    answered = state.answered_at if state.answered_at is not None and state.answered_at <= as_of else None
    found: dict[tuple[str, str], list[str]] = {}
    for period in periods_between(state.received_at, answered if answered is not None else as_of):
        cutoff = min(period.end, as_of)
        on_time = answered <= deadline if answered is not None and answered <= cutoff else cutoff <= deadline
        found.setdefault((state.unit, period.key), []).extend(_pair("PETITION_PROCESSING_ON_TIME", on_time))
    late = (answered if answered is not None else as_of) > deadline
    disliked = state.rating is not None and state.rating[0] <= as_of and not state.rating[1]
    for period in periods_of(state.received_at):
        found.setdefault((state.unit, period.key), []).extend((
            *_pair("PETITION_HANDLING_SATISFACTION", not (late or disliked or state.reraised)),
            *_pair("PETITION_CLASSIFICATION_TTHC", state.about == "procedure"),
            *_pair("PETITION_CLASSIFICATION_STAFF", state.about == "officer"),
        ))
    return {key: tuple(sorted(names)) for key, names in found.items()}


def petition_next_change(state: PetitionState, as_of: int, context: Context) -> int | None:
    if state.received_at is None:
        return None
    if state.received_at > as_of:
        return state.received_at
    future = [t for t in (state.answered_at, state.rating[0] if state.rating else None) if t and t > as_of]
    if state.answered_at is not None and state.answered_at <= as_of:
        return min(future) if future else None
    deadline = petition_deadline(state, context)
    candidates = [periods_of(as_of)[0].end + 1, *future]
    if deadline >= as_of:
        candidates.append(deadline + 1)
    return min(candidates)


def counters_of(contribution: Mapping[tuple[str, str], tuple[str, ...]]) -> Counter:
    total: Counter = Counter()
    for (owner, period), names in contribution.items():
        for name in names:
            total[(owner, period, name)] += 1
    return total
