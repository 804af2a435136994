"""Rich tables for people: the ranked leaderboard per peer group."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cli.labels import peer_group_label
from scoring.calendar import local
from scoring.rollup import UnitScore
from scoring.ruleset import GROUP_CODES, Ruleset


def ranked_table(units: Sequence[UnitScore], period: str, as_of: int, ruleset: Ruleset,
                 labels: dict[str, str]) -> Group:
    by_group: dict[str, list[UnitScore]] = {}
    for unit in units:
        by_group.setdefault(unit.peer_group, []).append(unit)
    tables = []
    language = "vi" if labels["rank"] == "Hạng" else "en"
    for peer_group in sorted(by_group):
        table = Table(title=f"{labels['title']} — {peer_group_label(peer_group, labels)}",
                      caption=f"{labels['period']} {period} · {labels['as_of']} {local(as_of):%Y-%m-%d %H:%M} · "
                              f"{labels['ruleset']} {ruleset.id}")
        table.add_column(labels["rank"], justify="right")
        table.add_column(labels["code"])
        table.add_column(labels["unit"])
        for code in GROUP_CODES:
            table.add_column(f"{code}\n/{float(ruleset.groups[code]['max']):g}", justify="right")
        table.add_column(labels["total"], justify="right", style="bold")
        table.add_column(labels["band"])
        table.add_column(labels["received"], justify="right")
        table.add_column(labels["late"], justify="right")
        table.add_column(labels["overdue"], justify="right")
        for unit in sorted(by_group[peer_group], key=lambda u: (u.rank, u.code)):
            band = ruleset.band(float(unit.card.total))
            table.add_row(
                str(unit.rank), unit.code, unit.name,
                *(f"{float(unit.card.groups[code]):.2f}" for code in GROUP_CODES),
                f"{float(unit.card.total):.2f}", getattr(band, language) if band else "",
                f"{unit.outcomes.get('received', 0):,}", f"{unit.outcomes.get('out.late', 0):,}",
                f"{unit.outcomes.get('out.overdue', 0):,}",
            )
        tables.append(table)
    return Group(*tables)


def report_table(report: dict | None, period: str, labels: dict[str, str], previous: dict[str, float]) -> Table:
    """A compact leaderboard of a JSON report, with arrows for totals that moved since the last look."""
    table = Table(title=f"{labels['title']} — {period}",
                  caption=f"{labels['as_of']} {report['as_of'][:16] if report else '—'}")
    for column in (labels["peer_group"], labels["rank"], labels["code"], labels["unit"], labels["total"], ""):
        table.add_column(column)
    for unit in sorted(report["units"] if report else [], key=lambda u: (u["peer_group"], u["rank"], u["code"])):
        before = previous.get(unit["code"])
        arrow = Text("") if before is None or before == unit["total"] else (
            Text("▲", style="green") if unit["total"] > before else Text("▼", style="red"))
        table.add_row(peer_group_label(unit["peer_group"], labels), str(unit["rank"]), unit["code"], unit["name"],
                      f"{unit['total']:.2f}", arrow)
    return table


def watch_report(read, period: str, lang: str, every: float | None, duration: float | None) -> None:
    """Print the table once, or refresh it in place every `every` seconds (for `duration`)."""
    import asyncio
    import time

    from rich.live import Live

    from cli.common import console as make_console
    from cli.labels import LABELS, Language

    labels = LABELS[Language(lang)]
    console = make_console()
    previous: dict[str, float] = {}
    if not every:
        console.print(report_table(asyncio.run(read()), period, labels, previous))
        return
    deadline = time.monotonic() + duration if duration else None
    with Live(console=console, refresh_per_second=2) as live:
        while deadline is None or time.monotonic() < deadline:
            report = asyncio.run(read())
            live.update(report_table(report, period, labels, previous))
            if report:
                previous = {unit["code"]: unit["total"] for unit in report["units"]}
            time.sleep(every)
