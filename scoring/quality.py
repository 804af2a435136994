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
    due_at = state.due_at
    limit_due = legal_due(state, directory, calendar)
    if limit_due is None:
        if due_at is None:
            found.append("no_due")
    elif due_at is not None and due_at > limit_due and local_day(due_at) > local_day(limit_due):
        found.append("due_beyond_limit")
    reappointed = lc.reappointments(state)
    if reappointed:
        if len(reappointed) > 1:
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
    dossiers: list[str] = field(default_factory=list)  # the unit's own and those of the units below it
    own: list[str] = field(default_factory=list)  # the unit's own: each dossier once, in its own unit
    points: Fraction | None = None


@dataclass
class UnitCheck:
    code: str
    name: str
    problems: dict[str, Problem] = field(default_factory=dict)

    def add(self, code: str, kind: str, dossier: str | None, own: bool = True) -> None:
        problem = self.problems.get(code)
        if problem is None:
            problem = self.problems[code] = Problem(code, kind)
        problem.count += 1
        if dossier is not None:
            problem.dossiers.append(dossier)
            if own:
                problem.own.append(dossier)


RefusedEvent = tuple[str, str | None, str | None, int | None]  # (reason, unit, dossier, occurred_at) as readable


def _points_if(unit: UnitScore | None, ruleset: Ruleset, changes: dict[str, int]) -> Fraction | None:
    """Points the unit's total would move by if each indicator's numerator moved by its change."""
    if unit is None or not any(changes.values()):
        return None
    points = Fraction(0)
    for code, change in changes.items():
        numerator, denominator = unit.counts.get(code, (0, 0))
        indicator = ruleset.by_code[code]
        moved = max(0, min(denominator, numerator + change))
        points += abs(indicator.score(moved, denominator) - indicator.score(numerator, denominator))
    return points


def check_units(dossiers: Iterable[DossierState], rejected: Iterable[RefusedEvent], period: Period, as_of: int,
                context: Context, scores: Iterable[UnitScore], petitions: Iterable[PetitionState] = ()
                ) -> list[UnitCheck]:
    """Every unit's problems in a period, pooled up the tree like its scores. Findings count by
    the dossier's receipt period, as the `q.*` counters of the scores do; a refused event counts in
    the period of its own time where that can be read (else in every period), and in its unit — or
    its dossier's — where that is a known unit, else as unattributed. Petitions with events but no
    receipt are orphans too."""
    directory, ruleset = context.directory, context.ruleset
    by_code = {unit.code: unit for unit in scores}
    checks: dict[str, UnitCheck] = {}
    # Per unit: dossiers whose outcome could turn late under the legal due / with any due, by finding,
    # and how many of them 5.4 counts as satisfied today.
    could_flip: dict[str, dict[str, list[int]]] = {}
    last = min(period.end, as_of)

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

    def add(unit: str | None, code: str, kind: str, dossier: str | None) -> None:
        for depth, check in enumerate(targets(unit)):
            check.add(code, kind, dossier, own=depth == 0)

    units_of: dict[str, str | None] = {}
    for state in dossiers:
        units_of[state.code] = state.unit
        if state.received_at is None:
            for problem in lc.transition_problems(state):
                add(None, problem, "finding", state.code)
            continue
        if not period.start <= state.received_at <= last:
            continue
        found = list(dossier_findings(state, directory, context.calendar))
        if not state.flags & lc.SYNCED:
            found.append("unsynced")
        for problem in found:
            add(state.unit, problem, "finding", state.code)
        flip = _flips(state, found, as_of, context)
        if flip is not None:
            for check in targets(state.unit):
                counts = could_flip.setdefault(check.code, {}).setdefault(flip[0], [0, 0])
                counts[0] += 1
                counts[1] += flip[1]
    for petition in petitions:
        if petition.received_at is None:
            add(None, "never_received", "finding", petition.petition_id)
    known_units = set(directory.units) | {unit for unit in units_of.values() if unit}
    for reason, unit, dossier, at in rejected:
        if at is not None and reason != "future_time" and not period.start <= at <= period.end:
            continue  # (an event from the future is listed in every period: its own time is the error)
        owner = unit if unit in known_units else units_of.get(dossier) if dossier else None
        add(owner, reason, "rejected", dossier)
    for check in checks.values():
        unit_score = by_code.get(check.code)
        for problem in check.problems.values():
            if problem.code == "unsynced":
                problem.points = _points_if(unit_score, ruleset, {"DOSSIER_SYNC": problem.count})
            elif problem.code in ("due_beyond_limit", "no_due"):
                late, satisfied = could_flip.get(check.code, {}).get(problem.code, (0, 0))
                problem.points = _points_if(unit_score, ruleset, {"ON_TIME": -late,
                                                                  "DOSSIER_RECEIVING_SATISFACTION": -satisfied})
    return [checks[code] for code in sorted(checks)]


def _flips(state: DossierState, found: list[str], as_of: int, context: Context) -> tuple[str, int] | None:
    """For a due beyond the legal limit: the finding, when judging against the legal due would make
    the dossier late. For no due at all: the finding, when it counts as on time only for want of
    one. With it, 1 when 5.4 counts the dossier satisfied today (a late one is not)."""
    switches = context.ruleset.lifecycle
    outcome = lc.classify(state, as_of, switches)
    if outcome not in lc.GOOD_OUTCOMES:
        return None
    unhappy = (state.rating is not None and state.rating[1] == 0) or bool(state.flags & lc.PETITION_FILED)
    if "due_beyond_limit" in found:
        strict = msgspec.structs.replace(state, due_at=legal_due(state, context.directory, context.calendar),
                                         reappointed=None)
        if lc.classify(strict, as_of, switches) not in lc.GOOD_OUTCOMES:
            return "due_beyond_limit", int(not unhappy)
    if "no_due" in found:
        return "no_due", int(not unhappy)
    return None
