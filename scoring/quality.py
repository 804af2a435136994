"""Data-quality findings: what a dossier's own record says is wrong with it (issue: fidelity on real data).

A finding never changes a score by itself; it says why a number may not mean what it seems to. Each
is a pure function of the dossier's merged state and the catalogue, so it is the same whatever the
order its events arrived in, in the batch scorer and in the workers alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from scoring import lifecycle as lc
from scoring.calendar import WorkingCalendar, local_day
from scoring.directory import Directory
from scoring.lifecycle import DossierState

# Finding codes, in the order reports list them, with what each means (English; the CLI labels
# carry the Vietnamese).
FINDINGS: dict[str, str] = {
    "refused_after_receipt": "status 3 (refused at reception) for a dossier already received: ignored, the"
                             " receipt stands",
    "status_after_end": "a processing status (4, 5, 6) after the dossier ended: ignored, the end stands",
    "never_received": "status changes or facts for a dossier with no receipt (status 2) record: not scored",
    "no_due": "no due date, no time limit and no catalogue limit: cannot be judged, counted as on time",
    "due_beyond_limit": "the source's due date is later than the legal time limit allows",
    "reappointed_twice": "the return date was re-appointed more than once (the rule allows once)",
    "apology_late": "re-appointed without an apology letter at least 1 working day before the due date",
    "unknown_procedure": "the procedure is not in the catalogue (indicators that count procedures miss it)",
    "unknown_unit": "the unit is not in the unit registry (it has no parent, peer group or rank)",
    "unsynced": "received but never acknowledged by the portal sync (the portal cannot count it)",
}
QUALITY_PREFIX = "q."


def legal_due(state: DossierState, directory: Directory, calendar: WorkingCalendar) -> int | None:
    """The due date the law allows: from the dossier's own time limit, else the catalogue's."""
    if state.received_at is None:
        return None
    return directory.legal_due(calendar, state.unit, state.procedure, state.channel, state.received_at, state.limit)


def dossier_findings(state: DossierState, directory: Directory, calendar: WorkingCalendar) -> tuple[str, ...]:
    """The findings of one dossier, as codes of FINDINGS (`unsynced` is left to DOSSIER_SYNC's own
    counters; `check` lists those dossiers)."""
    found = list(lc.transition_problems(state))
    if state.received_at is None:
        return tuple(found)
    limit_due = legal_due(state, directory, calendar)
    if state.due_at is None and limit_due is None:
        found.append("no_due")
    elif state.due_at is not None and limit_due is not None and local_day(state.due_at) > local_day(limit_due):
        found.append("due_beyond_limit")
    if len(state.reappointed_dues) > 1:
        found.append("reappointed_twice")
    if state.reappointed_dues and state.due_at is not None:
        hours = directory.hours(state.unit)
        latest_apology = calendar.subtract_working_minutes(state.due_at, hours.minutes_per_day, hours)
        if state.apology_at is None or state.apology_at > latest_apology:
            found.append("apology_late")
    if directory.procedures and state.procedure not in directory.procedures:
        found.append("unknown_procedure")
    if directory.units and state.unit not in directory.units:
        found.append("unknown_unit")
    return tuple(found)


def counter_names(findings: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(QUALITY_PREFIX + code for code in findings))
