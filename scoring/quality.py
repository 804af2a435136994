"""Data-quality findings: what a dossier's own record says is wrong with it (issue: fidelity on real data).

A finding never changes a score by itself; it says why a number may not mean what it seems to. Each
is a pure function of the dossier's merged state and the catalogue, so it is the same whatever the
order its events arrived in, in the batch scorer and in the workers alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import msgspec

from scoring import lifecycle as lc
from scoring.calendar import WorkingCalendar, local_day
from scoring.directory import Directory
from scoring.lifecycle import DossierState
from scoring.periods import Period
from scoring.rollup import UnitScore
from scoring.ruleset import Ruleset

if TYPE_CHECKING:  # contributions imports this module: its types are only types here
    from scoring.contributions import Context, PetitionState

# Finding codes, in the order reports list them, with what each means (English; the short labels
# people read, Vietnamese and English, are in `scoring.quality_labels`).
FINDINGS: dict[str, str] = {
    "refused_after_receipt": "status 3 (refused at reception) for a dossier already received: ignored, the"
                             " receipt stands",
    "status_after_end": "a processing status (4, 5, 6) after the dossier ended: ignored, the end stands",
    "ended_before_receipt": "an end (status 7-10) dated before the receipt: scored as sent",
    "never_received": "status changes or facts for a dossier (or petition) with no receipt record: not scored",
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
    return (*lc.transition_problems(state), *record_findings(state, directory, calendar))


def record_findings(state: DossierState, directory: Directory, calendar: WorkingCalendar) -> tuple[str, ...]:
    """Findings of the received record itself — its due, re-appointments, procedure and unit —
    which only a receipt, a re-appointment or a catalogue change can alter."""
    if state.received_at is None:
        return ()
    found = []
    limit_due = legal_due(state, directory, calendar)
    if state.due_at is None and limit_due is None:
        found.append("no_due")
    elif state.due_at is not None and limit_due is not None and local_day(state.due_at) > local_day(limit_due):
        found.append("due_beyond_limit")
    if state.reappointed_dues:
        if len(state.reappointed_dues) > 1:
            found.append("reappointed_twice")
        due = state.due_at if state.due_at is not None else limit_due
        hours = directory.hours(state.unit)
        latest_apology = calendar.subtract_working_minutes(due, hours.minutes_per_day, hours) if due else None
        if state.apology_at is None or (latest_apology is not None and state.apology_at > latest_apology):
            found.append("apology_late")
    if directory.procedures and state.procedure not in directory.procedures:
        found.append("unknown_procedure")
    if directory.units and state.unit not in directory.units:
        found.append("unknown_unit")
    return tuple(found)


def counter_names(findings: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(QUALITY_PREFIX + code for code in findings))


# --- the data-quality report (`chiso766 check`) ---------------------------------------------------

UNATTRIBUTED = "(unattributed)"  # problems whose unit cannot be known (a line that is not JSON, an orphan)


@dataclass
class Problem:
    """One kind of problem in one unit (and everything below it): how many, which dossiers, and
    how many points of the unit's total it may be costing (None: it moves no score by itself)."""

    code: str
    kind: str  # "rejected" (the event was refused) or "finding" (the dossier's record is wrong)
    count: int = 0
    dossiers: list[str] = field(default_factory=list)
    points: Fraction | None = None


@dataclass
class UnitCheck:
    code: str
    name: str
    problems: dict[str, Problem] = field(default_factory=dict)

    def add(self, code: str, kind: str, dossier: str | None) -> None:
        problem = self.problems.get(code)
        if problem is None:
            problem = self.problems[code] = Problem(code, kind)
        problem.count += 1
        if dossier is not None:
            problem.dossiers.append(dossier)


def in_period(state: DossierState, period: Period, as_of: int) -> bool:
    """Whether a dossier counts in the period's denominators: received by its end (and by "as
    of"), and not ended before it started."""
    if state.received_at is None or state.received_at > min(period.end, as_of):
        return False
    end = lc.end_time(state, as_of)
    return end is None or end >= period.start


def _points_if(unit: UnitScore | None, ruleset: Ruleset, code: str, numerator_change: int) -> Fraction | None:
    """Points the unit's total would move by if indicator `code`'s numerator moved by the change."""
    if unit is None or not numerator_change:
        return None
    numerator, denominator = unit.counts.get(code, (0, 0))
    indicator = ruleset.by_code[code]
    moved = max(0, min(denominator, numerator + numerator_change))
    return abs(indicator.score(moved, denominator) - indicator.score(numerator, denominator))


def check_units(dossiers: Iterable[DossierState], rejected: Iterable[tuple[str, str | None, str | None]],
                period: Period, as_of: int, context: Context, scores: Iterable[UnitScore],
                petitions: Iterable[PetitionState] = ()) -> list[UnitCheck]:
    """Every unit's problems in a period, pooled up the tree like its scores. `rejected` holds
    (reason, unit, dossier) of each refused event, unit and dossier where they could be read;
    petitions with events but no receipt are orphans too."""
    directory, ruleset = context.directory, context.ruleset
    by_code = {unit.code: unit for unit in scores}
    checks: dict[str, UnitCheck] = {}
    # Dossiers whose outcome could flip (good now, late under the legal due / with any due), per unit.
    could_flip: dict[str, dict[str, int]] = {}

    def targets(unit: str | None) -> list[UnitCheck]:
        codes = (unit, *directory.ancestors(unit)) if unit else (UNATTRIBUTED,)
        found = []
        for code in codes:
            check = checks.get(code)
            if check is None:
                registered = directory.units.get(code)
                check = checks[code] = UnitCheck(code, registered.name if registered else code)
            found.append(check)
        return found

    units_of: dict[str, str | None] = {}
    for state in dossiers:
        units_of[state.code] = state.unit
        if state.received_at is None:
            for problem in lc.transition_problems(state):
                for check in targets(None):
                    check.add(problem, "finding", state.code)
            continue
        if not in_period(state, period, as_of):
            continue
        found = list(dossier_findings(state, directory, context.calendar))
        if not state.flags & lc.SYNCED and period.start <= state.received_at <= period.end:
            found.append("unsynced")
        for problem in found:
            for check in targets(state.unit):
                check.add(problem, "finding", state.code)
        flips = _flips(state, found, as_of, context)
        if flips:
            for check in targets(state.unit):
                counts = could_flip.setdefault(check.code, {})
                counts[flips] = counts.get(flips, 0) + 1
    for petition in petitions:
        if petition.received_at is None:
            for check in targets(None):
                check.add("never_received", "finding", petition.petition_id)
    for reason, unit, dossier in rejected:
        for check in targets(unit or (units_of.get(dossier) if dossier else None)):
            check.add(reason, "rejected", dossier)
    for check in checks.values():
        unit_score = by_code.get(check.code)
        for problem in check.problems.values():
            if problem.code == "unsynced":
                problem.points = _points_if(unit_score, ruleset, "DOSSIER_SYNC", problem.count)
            elif problem.code in ("due_beyond_limit", "no_due"):
                problem.points = _points_if(unit_score, ruleset, "ON_TIME",
                                            -could_flip.get(check.code, {}).get(problem.code, 0))
    return [checks[code] for code in sorted(checks)]


def _flips(state: DossierState, found: list[str], as_of: int, context: Context) -> str | None:
    """For a due beyond the legal limit: the finding, when judging against the legal due would make
    the dossier late. For no due at all: the finding, when it counts as on time only for want of one."""
    switches = context.ruleset.lifecycle
    if "due_beyond_limit" in found:
        legal = legal_due(state, context.directory, context.calendar)
        strict = msgspec.structs.replace(state, due_at=legal, reappointed=None)
        if lc.classify(state, as_of, switches) in lc.GOOD_OUTCOMES and \
                lc.classify(strict, as_of, switches) not in lc.GOOD_OUTCOMES:
            return "due_beyond_limit"
    if "no_due" in found and lc.classify(state, as_of, switches) in lc.GOOD_OUTCOMES:
        return "no_due"
    return None
