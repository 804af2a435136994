"""From counter tallies to scored units: derive each unit's own counts, pool them up the tree,
add the catalogue indicators of its province or ministry, score, and rank within peer groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from scoring.calendar import WorkingCalendar, local
from scoring.directory import TOP_LEVELS, Directory
from scoring.periods import Period
from scoring.ranking import competition_ranks
from scoring.ruleset import Ruleset, ScoreCard

Counts = dict[str, list[int]]  # code → [numerator, denominator]
PROCEDURE_INDICATORS = {
    # code: (which procedures form the denominator, dossier counter that puts one in the numerator)
    "ONLINE_SERVICE_USED": ("online", "P.online"),
    "PAY_FORMALITY_WITH_ONLINE_TX": ("fee_bearing", "P.paid_online"),
    "PAY_FORMALITY_WITH_FEE_DOSSIER": ("fee_bearing", "P.fee"),
    "CITIZEN_DATA_CONNECTED_FORMALITY": ("for_citizens", "P.population"),
}
CATALOGUE_INDICATORS = ("PUBLISH_ON_TIME", "PUBLIC_UPDATE_ON_TIME", "PUBLIC_CONTENT_FULL")
OFFICER_COUNTERS = ("steps_on_time", "steps_late", "steps_open_late", "overdue_held", "late_completed", "missed")


@dataclass
class UnitScore:
    code: str
    name: str
    level: str
    parent: str | None
    peer_group: str
    counts: dict[str, tuple[int, int]]
    card: ScoreCard
    outcomes: dict[str, int] = field(default_factory=dict)  # `out.*` outcomes, `q.*` findings, `received`
    rank: int = 0

    @property
    def findings(self) -> dict[str, int]:
        """Data-quality findings of the unit and everything below it (`scoring.quality`)."""
        return {name[2:]: value for name, value in sorted(self.outcomes.items()) if name.startswith("q.")}


@dataclass
class OfficerTally:
    unit: str
    officer: str
    counters: dict[str, int]
    points_cost: Fraction


def split_by_owner(tallies: Mapping[tuple[str, str, str], int], period: str) -> dict[str, dict[str, int]]:
    """One period's counters per owner, out of flat (owner, period, counter) tallies."""
    owners: dict[str, dict[str, int]] = {}
    for (owner, period_key, name), value in tallies.items():
        if period_key == period and value:
            owners.setdefault(owner, {})[name] = value
    return owners


def _own_counts(unit: str, counters: Mapping[str, int], directory: Directory, ruleset: Ruleset) -> Counts:
    counts: Counts = {}
    for indicator in ruleset.indicators:
        if indicator.basis in ("received", "active", "completed", "petitions_active", "petitions_received"):
            numerator = counters.get(f"{indicator.code}.n", 0)
            denominator = counters.get(f"{indicator.code}.d", 0)
            if numerator or denominator:
                counts[indicator.code] = [numerator, denominator]
    procedures = directory.handled_by(unit)
    if procedures:
        counts["ONLINE_PROVISION"] = [sum(p.online for p in procedures), len(procedures)]
        for code, (attribute, counter) in PROCEDURE_INDICATORS.items():
            eligible = [p for p in procedures if getattr(p, attribute)]
            used = sum(1 for p in eligible if counters.get(f"{counter}|{p.code}", 0) > 0)
            counts[code] = [used, len(eligible)]
    registered = directory.units.get(unit)
    if registered is not None and registered.level == "commune":
        counts["ELECTRONIC_CERTIFIED_COPY"] = [int(registered.offers_e_certified_copy), 1]
    return counts


def own_counts(unit: str, counters: Mapping[str, int], directory: Directory, ruleset: Ruleset) -> Counts:
    """A unit's own indicator counts from its own counters (the catalogue indicators and what is
    pooled from the units below it left out): what the planner re-scores after each action."""
    return _own_counts(unit, counters, directory, ruleset)


def _catalogue_counts(top: str, level: str, period: Period, as_of: int, directory: Directory,
                      ruleset: Ruleset, calendar: WorkingCalendar) -> Counts:
    lead = ruleset.publish_lead_working_days.get(level, 5)
    within = ruleset.publish_within_working_days.get(level, 5)
    first_day, last_day = local(period.start).date(), local(min(period.end, as_of)).date()
    today = local(as_of).date()
    counts: Counts = {code: [0, 0] for code in CATALOGUE_INDICATORS}

    def in_period(day: date | None) -> bool:
        return day is not None and first_day <= day <= last_day

    for procedure in directory.procedures.values():
        # A procedure under a provincial agency's authority is the province's to publish.
        if directory.top(procedure.authority_unit) != top:
            continue
        decided = procedure.decision_date
        published_at = procedure.published_at
        published = local(published_at).date() if published_at is not None and published_at <= as_of else None
        if in_period(decided) and procedure.legal_effective_date is not None:
            counts["PUBLISH_ON_TIME"][1] += 1
            if calendar.add_working_days(decided, lead) <= procedure.legal_effective_date:  # type: ignore[arg-type]
                counts["PUBLISH_ON_TIME"][0] += 1
        if decided is not None:
            deadline = calendar.add_working_days(decided, within)
            due_unpublished = published is None and deadline <= today and in_period(deadline)
            if in_period(published) or due_unpublished:
                counts["PUBLIC_UPDATE_ON_TIME"][1] += 1
                if published is not None and published <= deadline:
                    counts["PUBLIC_UPDATE_ON_TIME"][0] += 1
        if published is not None:
            counts["PUBLIC_CONTENT_FULL"][1] += 1
            if procedure.content_parts_present >= ruleset.mandatory_content_parts:
                counts["PUBLIC_CONTENT_FULL"][0] += 1
    return counts


def score_units(owners: Mapping[str, Mapping[str, int]], period: Period, as_of: int,
                directory: Directory, ruleset: Ruleset, calendar: WorkingCalendar) -> list[UnitScore]:
    """Every registered unit (and any unregistered unit with dossiers), scored and ranked, by code.
    `owners` holds the period's counters per owner (`split_by_owner`)."""
    unit_codes = set(directory.units) | {owner for owner in owners if "|" not in owner}
    pooled: dict[str, Counts] = {code: {} for code in unit_codes}
    outcomes: dict[str, dict[str, int]] = {code: {} for code in unit_codes}
    for code in unit_codes:
        own = owners.get(code, {})
        own_counts = _own_counts(code, own, directory, ruleset)
        for target in (code, *directory.ancestors(code)):
            if target not in pooled:
                continue
            for indicator, (numerator, denominator) in own_counts.items():
                pair = pooled[target].setdefault(indicator, [0, 0])
                pair[0] += numerator
                pair[1] += denominator
            for name, value in own.items():
                if name.startswith(("out.", "q.")) or name == "received":
                    outcomes[target][name] = outcomes[target].get(name, 0) + value
    catalogue: dict[str, Counts] = {}
    for code in unit_codes:
        top = directory.top(code)
        top_unit = directory.units.get(top)
        if top_unit is None or top_unit.level not in TOP_LEVELS:
            continue
        if top not in catalogue:
            catalogue[top] = _catalogue_counts(top, top_unit.level, period, as_of, directory, ruleset, calendar)
        pooled[code].update({k: list(v) for k, v in catalogue[top].items()})
    results = []
    for code in sorted(unit_codes):
        unit = directory.units.get(code)
        counts = {indicator: (pair[0], pair[1]) for indicator, pair in pooled[code].items()}
        results.append(UnitScore(
            code=code, name=unit.name if unit else code, level=unit.level if unit else "unregistered",
            parent=unit.parent if unit else None, peer_group=directory.peer_group(code), counts=counts,
            card=ruleset.score(counts), outcomes=outcomes[code],
        ))
    groups: dict[str, list[UnitScore]] = {}
    for result in results:
        groups.setdefault(result.peer_group, []).append(result)
    for members in groups.values():
        for result, rank in zip(members, competition_ranks([m.card.total for m in members]), strict=True):
            result.rank = rank
    return results


def officer_tallies(owners: Mapping[str, Mapping[str, int]], units: list[UnitScore],
                    ruleset: Ruleset) -> list[OfficerTally]:
    """Per-officer counters and the points of their own unit's score their missed dossiers cost,
    from the period's counters per owner."""
    by_code = {unit.code: unit for unit in units}
    indicators = ruleset.by_code
    found = []
    for owner, counters in sorted(owners.items()):
        if "|" not in owner:
            continue
        unit_code, officer = owner.split("|", 1)
        unit = by_code.get(unit_code)
        missed = counters.get("missed", 0)
        cost = Fraction(0)
        if unit is not None and missed:
            for code in ("ON_TIME", "DOSSIER_RECEIVING_SATISFACTION"):
                numerator, denominator = unit.counts.get(code, (0, 0))
                indicator = indicators[code]
                cost += indicator.score(min(denominator, numerator + missed), denominator) - \
                    indicator.score(numerator, denominator)
        found.append(OfficerTally(unit_code, officer, {n: counters.get(n, 0) for n in OFFICER_COUNTERS}, cost))
    return found
