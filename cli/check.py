"""`chiso766 check`: the data-quality report a provincial IT centre runs before trusting the numbers."""

from __future__ import annotations

import sys
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import resources
from cli.common import dump, err, fail, not_after, parse_instant
from cli.history import load_history, missing, report_rejects
from cli.labels import PROBLEM_LABELS, Language, problem_label
from scoring.calendar import iso
from scoring.engine import Engine
from scoring.periods import PeriodError, parse_period, periods_of
from scoring.quality import UnitCheck, check_units
from scoring.rollup import UnitScore

out = Console(width=None if sys.stdout.isatty() else 200)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


def report_findings(units: list[UnitScore]) -> None:
    """One stderr line: the data-quality findings of the top units (everything pooled), so a
    person scoring a history sees them without asking."""
    totals: dict[str, int] = {}
    for unit in units:
        if unit.parent is None:
            for code, count in unit.findings.items():
                totals[code] = totals.get(code, 0) + count
    if totals:
        err.print("data findings (chiso766 check lists the dossiers): "
                  + ", ".join(f"{code} {count:,}" for code, count in sorted(totals.items())))


def check(
    history: Annotated[str, typer.Argument(help="History file (.jsonl or .jsonl.gz) or - for stdin.")],
    period: Annotated[str | None, typer.Option(help="month:YYYY-MM, quarter:YYYY-QN or year:YYYY "
                                                    "(default: the year of the latest event).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Judge as of (default: latest event).")] = None,
    now: Annotated[str | None, typer.Option("--now", help="The moment of processing (default: the wall "
                                                          "clock); events dated after it are refused.")] = None,
    unit: Annotated[str | None, typer.Option(help="Only this unit (with what is below it pooled in).")] = None,
    problem: Annotated[str | None, typer.Option(help="Only this problem code.")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json, csv or xlsx.")] = Format.table,
    out_path: Annotated[Path | None, typer.Option("--out", help="File for csv / xlsx.")] = None,
    page: Annotated[int, typer.Option(min=1, help="Page of dossier codes per problem.")] = 1,
    size: Annotated[int, typer.Option(min=1, max=10_000, help="Dossier codes per page.")] = 20,
    lang: Annotated[Language, typer.Option("--lang", help="Label language: vi or en.")] = Language.vi,
) -> None:
    """Per unit: refused events by reason, impossible transitions, dossiers that cannot be judged,
    dues beyond the legal limit, unknown procedures or units, dossiers never synced — with the
    dossier codes and the points each problem may be costing. Exit code 0 whatever it finds."""
    if missing(history):
        fail(f"history file {history} does not exist")
    if output in (Format.csv, Format.xlsx) and out_path is None:
        fail(f"--format {output} writes a file: give --out FILE")
    cutoff = parse_instant(as_of, "--as-of") if as_of is not None else None
    engine = Engine(resources.load_ruleset(), resources.load_calendar())
    stats = load_history(history, engine, cutoff, not_after(now), keep_rejections=True)
    moment = cutoff if cutoff is not None else engine.latest_event_at
    if moment is None:
        fail(f"{history} holds no valid event ({sum(stats.rejected.values())} rejected)")
    try:
        reporting = parse_period(period) if period else periods_of(moment)[2]
    except PeriodError as error:
        fail(str(error))
    units = engine.score_units(reporting, moment)
    checks = check_units(engine.dossiers.values(), stats.rejections, reporting, moment, engine.context, units,
                         engine.petitions.values())
    if unit is not None:
        checks = [check for check in checks if check.code == unit]
        if not checks:
            fail(f"no unit {unit} with problems in {reporting.key}")
    if problem is not None:
        if problem not in PROBLEM_LABELS[Language.en] and problem not in stats.rejected:
            fail(f"unknown problem {problem!r}; known: {', '.join(sorted(PROBLEM_LABELS[Language.en]))}")
        for found in checks:
            found.problems = {code: p for code, p in found.problems.items() if code == problem}
    report_rejects(stats)
    if output in (Format.csv, Format.xlsx):
        page, size = 1, 10**9  # an export lists every dossier
    document = report(checks, reporting.key, moment, page, size)
    if output is Format.json:
        dump(document)
    elif output is Format.table:
        out.print(table(document, lang))
    else:
        write_export(document, output, out_path, lang)  # type: ignore[arg-type]
        err.print(f"wrote {out_path}")


def report(checks: list[UnitCheck], period: str, as_of: int, page: int, size: int) -> dict:
    """`{"period", "as_of", "units": [{"code", "name", "problems": [{"code", "kind", "count",
    "points", "dossiers", "page", "pages"}]}]}`, problems by points at stake, then count."""
    units = []
    for check in checks:
        problems = []
        for found in sorted(check.problems.values(), key=lambda p: (-(p.points or 0), -p.count, p.code)):
            codes = sorted(found.dossiers)
            problems.append({
                "code": found.code, "kind": found.kind, "count": found.count,
                "points": _points(found.points), "dossiers": codes[(page - 1) * size:page * size],
                "page": page, "pages": max(1, -(-len(codes) // size)),
            })
        if problems:
            units.append({"code": check.code, "name": check.name, "problems": problems})
    return {"period": period, "as_of": iso(as_of), "units": units}


def _points(points: Fraction | None) -> float | None:
    return None if points is None else round(float(points), 2)


def table(document: dict, lang: Language) -> Table:
    vi = lang is Language.vi
    grid = Table(title=("Kiểm tra chất lượng dữ liệu" if vi else "Data-quality check")
                 + f" — {document['period']}", caption=("Tính đến " if vi else "As of ") + document["as_of"])
    for column in (("Đơn vị", "Unit"), ("Vấn đề", "Problem"), ("Số lượng", "Count"),
                   ("Điểm có thể mất", "Points at stake"), ("Hồ sơ", "Dossiers")):
        grid.add_column(column[0] if vi else column[1])
    for unit in document["units"]:
        for index, found in enumerate(unit["problems"]):
            shown = ", ".join(found["dossiers"][:5]) + (" …" if found["count"] > 5 else "")
            grid.add_row(f"{unit['code']} {unit['name']}" if index == 0 else "", problem_label(found["code"], lang),
                         f"{found['count']:,}", "" if found["points"] is None else f"{found['points']:.2f}", shown)
    return grid


def write_export(document: dict, output: Format, path: Path, lang: Language) -> None:
    from api.export import Sheet, write_csv, write_xlsx

    vi = lang is Language.vi
    summary = Sheet("check", "Kiểm tra dữ liệu" if vi else "Data check",
                    ["Mã đơn vị" if vi else "Unit code", "Đơn vị" if vi else "Unit", "Mã vấn đề" if vi else "Code",
                     "Vấn đề" if vi else "Problem", "Số lượng" if vi else "Count",
                     "Điểm có thể mất" if vi else "Points at stake"], score_columns=frozenset({5}))
    dossiers = Sheet("dossiers", "Hồ sơ" if vi else "Dossiers", ["Mã đơn vị" if vi else "Unit code",
                                                               "Mã vấn đề" if vi else "Code",
                                                               "Mã hồ sơ" if vi else "Dossier"])
    for unit in document["units"]:
        for found in unit["problems"]:
            summary.rows.append([unit["code"], unit["name"], found["code"], problem_label(found["code"], lang),
                                 found["count"], found["points"]])
            dossiers.rows.extend([unit["code"], found["code"], code] for code in found["dossiers"])
    (write_xlsx if output is Format.xlsx else write_csv)([summary, dossiers], path)
