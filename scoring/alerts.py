"""Deadline alerts (DOMAIN.md §3 "Sắp trễ", apology letters): which alerts a dossier owes, and when.

Thresholds are working time before the (pause-adjusted) due: policy, not law, so they come from
configuration. Each alert has an id built from the dossier, kind, threshold and due, so a
redelivered or recomputed alert is recognisably the same one.
"""

from __future__ import annotations

from dataclasses import dataclass

from scoring import lifecycle as lc
from scoring.calendar import WorkingCalendar, WorkingHours
from scoring.contributions import holder_at
from scoring.lifecycle import DossierState
from scoring.ruleset import LifecycleSwitches

APPROACHING, APOLOGY_DUE, OVERDUE = "approaching", "apology_due", "overdue"


@dataclass(frozen=True)
class AlertPolicy:
    """Approaching thresholds and the apology lead, in working minutes before due."""

    approaching_minutes: tuple[int, ...] = (2 * 450, 4 * 60)  # 2 working days, 4 working hours
    apology_minutes: int = 450  # 1 working day (DOMAIN.md §3: apology ≥ 1 working day before due)


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str
    dossier: str
    procedure: str | None
    unit: str | None
    officer: str | None
    due: int
    at: int
    threshold_minutes: int


def scheduled_alerts(state: DossierState, switches: LifecycleSwitches, calendar: WorkingCalendar,
                     hours: WorkingHours, policy: AlertPolicy, fallback_due: int | None = None,
                     after: int | None = None) -> list[tuple[int, str, int]]:
    """(instant, kind, threshold) of every alert an open dossier would raise, judged as of `after`."""
    received_at = state.received_at or 0
    moment = max(after, received_at) if after is not None else received_at
    overdue_at = lc.turns_overdue_at(state, moment, switches, fallback_due)
    if overdue_at is None:
        return []
    effective_due = overdue_at - 1
    plan = [(calendar.subtract_working_minutes(effective_due, minutes, hours), APPROACHING, minutes)
            for minutes in policy.approaching_minutes]
    plan.append((calendar.subtract_working_minutes(effective_due, policy.apology_minutes, hours),
                 APOLOGY_DUE, policy.apology_minutes))
    plan.append((overdue_at, OVERDUE, 0))
    return sorted(plan)


def alerts_between(state: DossierState, since: int, until: int, switches: LifecycleSwitches,
                   calendar: WorkingCalendar, hours: WorkingHours, policy: AlertPolicy,
                   fallback_due: int | None = None) -> list[Alert]:
    """Alerts whose instant falls in (since, until] for a dossier still open at that instant."""
    if state.received_at is None or lc.is_excluded(state, until):
        return []
    due = lc.due_for_scoring(state, switches) or fallback_due
    if due is None:
        return []
    found = []
    for instant, kind, threshold in scheduled_alerts(state, switches, calendar, hours, policy, fallback_due, since):
        if since < instant <= until and instant >= state.received_at and lc.end_time(state, instant) is None:
            found.append(Alert(f"{state.code}:{kind}:{threshold}:{due}", kind, state.code, state.procedure,
                               state.unit, holder_at(state, instant), due, instant, threshold))
    return found


def next_alert_at(state: DossierState, after: int, switches: LifecycleSwitches, calendar: WorkingCalendar,
                  hours: WorkingHours, policy: AlertPolicy, fallback_due: int | None = None) -> int | None:
    upcoming = [instant for instant, _, _ in
                scheduled_alerts(state, switches, calendar, hours, policy, fallback_due, after) if instant > after]
    return min(upcoming) if upcoming else None
