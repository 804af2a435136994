"""The JSON shape shared by `chiso766 score` (batch) and `chiso766 scores` (read from the projection)."""

from __future__ import annotations

from collections.abc import Iterable

from scoring.calendar import local
from scoring.rollup import UnitScore
from scoring.ruleset import Ruleset, as_number


def unit_json(unit: UnitScore, ruleset: Ruleset) -> dict:
    return {
        "code": unit.code,
        "name": unit.name,
        "level": unit.level,
        "parent": unit.parent,
        "peer_group": unit.peer_group,
        "indicators": {
            indicator.code: {
                "numerator": unit.counts.get(indicator.code, (0, 0))[0],
                "denominator": unit.counts.get(indicator.code, (0, 0))[1],
                "score": as_number(unit.card.indicators[indicator.code]),
            }
            for indicator in ruleset.indicators
        },
        "groups": {code: as_number(value) for code, value in unit.card.groups.items()},
        "total": as_number(unit.card.total),
        "rank": unit.rank,
        "findings": unit.findings,
        # Dossiers of the unit and below it by how they stand at the period's end (or "as of" for the
        # current period): `overdue` is open past due then, `late` completed late — the notice's annex.
        "outcomes": {name[4:]: value for name, value in sorted(unit.outcomes.items()) if name.startswith("out.")},
    }


def report_json(period: str, as_of: int, ruleset: Ruleset, units: Iterable[UnitScore]) -> dict:
    return {
        "period": period,
        "as_of": local(as_of).isoformat(),
        "ruleset": ruleset.id,
        "units": [unit_json(unit, ruleset) for unit in sorted(units, key=lambda u: u.code)],
    }
