"""Points at stake: what an open dossier costs its unit and every ancestor if it misses its due.

An open dossier within its due counts in the numerator of ON_TIME and of
DOSSIER_RECEIVING_SATISFACTION; once overdue it leaves both. The stake is the score lost by that
one step down, for each unit whose pooled counts include the dossier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

from scoring.ruleset import Ruleset

AT_STAKE_INDICATORS = ("ON_TIME", "DOSSIER_RECEIVING_SATISFACTION")


def points_at_stake(counts: Mapping[str, tuple[int, int]], ruleset: Ruleset, dossiers: int = 1) -> Fraction:
    """Score lost by one unit if `dossiers` of its on-time dossiers turn overdue."""
    lost = Fraction(0)
    indicators = ruleset.by_code
    for code in AT_STAKE_INDICATORS:
        numerator, denominator = counts.get(code, (0, 0))
        if denominator == 0:
            continue
        indicator = indicators[code]
        lost += indicator.score(numerator, denominator) - indicator.score(max(0, numerator - dossiers), denominator)
    return lost


def stakes_along(chain: Sequence[str], counts_by_unit: Mapping[str, Mapping[str, tuple[int, int]]],
                 ruleset: Ruleset) -> dict[str, Fraction]:
    """Points at stake for the dossier's own unit and each ancestor, nearest first."""
    return {unit: points_at_stake(counts_by_unit.get(unit, {}), ruleset) for unit in chain}
