"""Competition ranking ("1224"): equal totals share a rank, the next rank skips the tied places."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def competition_ranks(totals: Sequence[Fraction | float]) -> list[int]:
    """Rank of each total in input order: 1 + how many totals are strictly higher."""
    ordered = sorted(totals, reverse=True)
    first_place: dict[Fraction | float, int] = {}
    for place, total in enumerate(ordered, start=1):
        first_place.setdefault(total, place)
    return [first_place[total] for total in totals]

