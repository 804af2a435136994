"""`chiso766 check`: the data-quality report a provincial IT centre runs before trusting the numbers."""

from __future__ import annotations

import sys
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console, dump, err, fail, not_after, parse_instant
from cli.history import load_history, missing, report_rejects
from cli.labels import PROBLEM_LABELS, Language, problem_label
from cli.readside import read_projection
from schemas.decode import FUTURE_TOLERANCE_SECONDS
from scoring.calendar import iso
from scoring.engine import Engine
from scoring.periods import PeriodError, parse_period, periods_of
from scoring.quality import UNATTRIBUTED, UnitCheck, check_units
from scoring.rollup import UnitScore
from support import resources

out = console(width=None if sys.stdout.isatty() else 200)


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


# Said wherever namespace counts are shown: the workers keep counters, not the dossiers behind them.
COUNTS_ONLY = {
    Language.vi: "Chỉ có số lượng: namespace không lưu danh sách hồ sơ có vấn đề; chạy chiso766 check HISTORY để"
                 " xem mã hồ sơ.",
    Language.en: "Counts only: a namespace keeps no list of the dossiers behind them; run chiso766 check HISTORY"
                 " for the dossier codes.",
}


def check(
    history: Annotated[str | None, typer.Argument(help="History file (.jsonl or .jsonl.gz) or - for stdin; "
                                                       "leave out with --namespace.")] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", help="Instead of a history: the counts a running namespace's workers keep in Redis "
                            "(findings per unit, refused events by reason; no dossier codes).")] = None,
    period: Annotated[str | None, typer.Option(help="month:YYYY-MM, quarter:YYYY-QN or year:YYYY "
                                                    "(default: the year of the latest event; required "
                                                    "with --namespace).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Judge as of (default: latest event).")] = None,
    now: Annotated[str | None, typer.Option("--now", help="The moment of processing (default: the wall "
                                                          "clock); events dated after it are refused.")] = None,
    unit: Annotated[str | None, typer.Option(help="Only this unit (with what is below it pooled in); with "
                                                  "--namespace, the units below it that have findings too.")] = None,
    problem: Annotated[str | None, typer.Option(help="Only this problem code.")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json, csv or xlsx.")] = Format.table,
    out_path: Annotated[Path | None, typer.Option("--out", help="File for csv / xlsx.")] = None,
    page: Annotated[int, typer.Option(min=1, help="Page of dossier codes per problem.")] = 1,
    size: Annotated[int, typer.Option(min=1, max=10_000, help="Dossier codes per page.")] = 20,
    lang: Annotated[Language, typer.Option("--lang", help="Label language: vi or en.")] = Language.vi,
) -> None:
    """Per unit: refused events by reason, impossible transitions, dossiers that cannot be judged,
    dues beyond the legal limit, unknown procedures or units, dossiers never synced — with the
    dossier codes and the points each problem may be costing. With --namespace instead of a
    history: the same counts from a running pipeline's Redis projection, without dossier codes.
    Exit code 0 whatever it finds."""
    if (history is None) == (namespace is None):
        fail("give a HISTORY file, or --namespace NS to read a running pipeline's counts"
             if history is None else "a HISTORY file and --namespace exclude each other: give one")
    if output in (Format.csv, Format.xlsx) and out_path is None:
        fail(f"--format {output} writes a file: give --out FILE")
    if namespace is not None:
        if as_of is not None or now is not None:
            fail("--as-of and --now judge a HISTORY; a namespace's counts are as of its workers' clock")
        if period is None:
            fail("--namespace needs --period (month:YYYY-MM, quarter:YYYY-QN or year:YYYY)")
        check_namespace(namespace, period, unit, problem, output, out_path, lang)
        return
    assert history is not None  # for the type checker: exactly one of the two was given
    check_history(history, period, as_of, now, unit, problem, output, out_path, page, size, lang)


def check_history(history: str, period: str | None, as_of: str | None, now: str | None, unit: str | None,
                  problem: str | None, output: Format, out_path: Path | None, page: int, size: int,
                  lang: Language) -> None:
    # Everything that can be wrong with the arguments is said before a long history is read.
    if missing(history):
        fail(f"history file {history} does not exist")
    try:
        reporting = parse_period(period) if period else None
    except PeriodError as error:
        fail(str(error))
    if problem is not None and problem not in PROBLEM_LABELS[Language.en]:
        fail(f"unknown problem {problem!r}; known: {', '.join(sorted(PROBLEM_LABELS[Language.en]))}")
    if out_path is not None and output in (Format.csv, Format.xlsx) and (
            out_path.is_dir() or not out_path.parent.is_dir()):
        fail(f"cannot write {out_path}: " + ("it is a directory" if out_path.is_dir() else "no such directory"))
    cutoff = parse_instant(as_of, "--as-of") if as_of is not None else None
    processed_by = not_after(now)
    engine = Engine(resources.load_ruleset(), resources.load_calendar())
    stats = load_history(history, engine, cutoff, processed_by, keep_rejections=True)
    # With no valid event at all, the report still says what was refused, as of the processing time.
    moment = cutoff if cutoff is not None else engine.latest_event_at or processed_by - FUTURE_TOLERANCE_SECONDS
    reporting = reporting or periods_of(moment)[2]
    units = engine.score_units(reporting, moment)
    checks = check_units(engine.dossiers.values(), stats.rejections, reporting, moment, engine.context, units,
                         engine.petitions.values())
    if unit is not None:
        known = unit in engine.directory.units or any(state.unit == unit for state in engine.dossiers.values())
        if not known and unit != UNATTRIBUTED:
            fail(f"unknown unit {unit}: it is neither in the registry nor on a dossier of {history}")
        checks = [check for check in checks if check.code == unit]
    if problem is not None:
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
        write_export(document, checks, output, out_path, lang)  # type: ignore[arg-type]
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
            grid.add_row(unit_label(unit, lang) if index == 0 else "", problem_label(found["code"], lang),
                         f"{found['count']:,}", "" if found["points"] is None else f"{found['points']:.2f}", shown)
    if not document["units"]:
        grid.add_row("", "Không có vấn đề" if vi else "No problems", "", "", "")
    return grid


def unit_label(unit: dict, lang: Language) -> str:
    if unit["code"] == UNATTRIBUTED:
        return "(không xác định được đơn vị)" if lang is Language.vi else "(unit unknown)"
    return f"{unit['code']} {unit['name']}"


def write_export(document: dict, checks: list[UnitCheck], output: Format, path: Path, lang: Language) -> None:
    """Two sheets: each unit's problems (pooled up the tree, like its scores), and each dossier once,
    under its own unit — titled with the period and "as of", so a printed page says what it covers."""
    from api.export import Sheet, write_csv, write_xlsx

    vi = lang is Language.vi
    covers = f"{document['period']} — " + ("tính đến " if vi else "as of ") + document["as_of"]
    kind_label = {"finding": "Phát hiện" if vi else "Finding", "rejected": "Bị từ chối" if vi else "Refused"}
    summary = Sheet("check", "Kiểm tra dữ liệu" if vi else "Data check",
                    ["Mã đơn vị" if vi else "Unit code", "Đơn vị" if vi else "Unit", "Loại" if vi else "Kind",
                     "Mã vấn đề" if vi else "Code", "Vấn đề" if vi else "Problem", "Số lượng" if vi else "Count",
                     "Điểm có thể mất" if vi else "Points at stake"], score_columns=frozenset({6}), caption=covers)
    dossiers = Sheet("dossiers", "Hồ sơ" if vi else "Dossiers",
                     ["Mã đơn vị" if vi else "Unit code", "Loại" if vi else "Kind", "Mã vấn đề" if vi else "Code",
                      "Vấn đề" if vi else "Problem", "Mã hồ sơ" if vi else "Dossier"], caption=covers)
    for unit in document["units"]:
        for found in unit["problems"]:
            name = unit_label(unit, lang) if unit["code"] == UNATTRIBUTED else unit["name"]
            summary.rows.append([unit["code"], name, kind_label[found["kind"]], found["code"],
                                 problem_label(found["code"], lang), found["count"], found["points"]])
    for check in checks:
        for found in check.problems.values():
            label = problem_label(found.code, lang)
            dossiers.rows.extend([check.code, kind_label[found.kind], found.code, label, code]
                                 for code in sorted(found.own))
    (write_xlsx if output is Format.xlsx else write_csv)([summary, dossiers], path)


# --- from a running namespace ----------------------------------------------------------------------

def check_namespace(namespace: str, period: str, unit: str | None, problem: str | None, output: Format,
                    out_path: Path | None, lang: Language) -> None:
    """`check --namespace`: the API's `/api/quality` document, read through the same store code."""
    try:
        key = parse_period(period).key
    except PeriodError as error:
        fail(str(error))
    document = read_projection(namespace, lambda projection: projection.quality(key, unit))
    if problem is not None:
        known = {*PROBLEM_LABELS[Language.en], *document["rejected_all_time"]}
        if problem not in known:
            fail(f"unknown problem {problem!r}; known: {', '.join(sorted(known))}")
        document = only_problem(document, problem, unit)
    err.print(COUNTS_ONLY[lang])
    if output is Format.json:
        dump(document)
    elif output is Format.table:
        for grid in namespace_tables(document, namespace, lang):
            out.print(grid)
    else:
        write_namespace_export(document, output, out_path, lang)  # type: ignore[arg-type]
        err.print(f"wrote {out_path}")


def only_problem(document: dict, problem: str, unit: str | None) -> dict:
    """The document with one problem code only (the requested unit stays, as in the API)."""
    units = [{**row, "findings": {code: n for code, n in row["findings"].items() if code == problem}}
             for row in document["units"]]
    return {**document, "units": [row for row in units if row["findings"] or row["code"] == unit],
            "rejected": {code: n for code, n in document["rejected"].items() if code == problem},
            "rejected_all_time": {code: n for code, n in document["rejected_all_time"].items() if code == problem}}


def namespace_tables(document: dict, namespace: str, lang: Language) -> tuple[Table, Table]:
    vi = lang is Language.vi
    nothing = "Không có vấn đề" if vi else "No problems"
    findings = Table(title=("Kiểm tra chất lượng dữ liệu" if vi else "Data-quality check")
                     + f" — {document['period']} — namespace {namespace}",
                     caption=("Tính đến " if vi else "As of ") + document["as_of"] + ". " + COUNTS_ONLY[lang])
    for column in (("Đơn vị", "Unit"), ("Vấn đề", "Problem"), ("Số lượng", "Count")):
        findings.add_column(column[0] if vi else column[1], justify="right" if column[1] == "Count" else "left")
    for unit in document["units"]:
        if not unit["findings"]:
            findings.add_row(f"{unit['code']} {unit['name']}", nothing, "")
        for index, (code, count) in enumerate(unit["findings"].items()):
            findings.add_row(f"{unit['code']} {unit['name']}" if index == 0 else "", problem_label(code, lang),
                             f"{count:,}")
    if not document["units"]:
        findings.add_row("", nothing, "")
    rejected = Table(title="Sự kiện bị từ chối" if vi else "Refused events")
    for column in (("Lý do", "Reason"), (f"Trong kỳ {document['period']}", f"In {document['period']}"),
                   ("Từ đầu", "All time")):
        rejected.add_column(column[0] if vi else column[1], justify="left" if column[1] == "Reason" else "right")
    reasons = sorted({*document["rejected"], *document["rejected_all_time"]})
    for code in reasons:
        rejected.add_row(problem_label(code, lang), f"{document['rejected'].get(code, 0):,}",
                         f"{document['rejected_all_time'].get(code, 0):,}")
    if not reasons:
        rejected.add_row(nothing, "", "")
    return findings, rejected


def write_namespace_export(document: dict, output: Format, path: Path, lang: Language) -> None:
    from api.export import Sheet, write_csv, write_xlsx

    vi = lang is Language.vi
    findings = Sheet("check", "Kiểm tra dữ liệu" if vi else "Data check",
                     ["Mã đơn vị" if vi else "Unit code", "Đơn vị" if vi else "Unit", "Mã vấn đề" if vi else "Code",
                      "Vấn đề" if vi else "Problem", "Số lượng" if vi else "Count"])
    for unit in document["units"]:
        findings.rows.extend([unit["code"], unit["name"], code, problem_label(code, lang), count]
                             for code, count in unit["findings"].items())
    rejected = Sheet("rejected", "Sự kiện bị từ chối" if vi else "Refused events",
                     ["Mã lý do" if vi else "Code", "Lý do" if vi else "Reason",
                      f"Trong kỳ {document['period']}" if vi else f"In {document['period']}",
                      "Từ đầu" if vi else "All time"])
    rejected.rows.extend([code, problem_label(code, lang), document["rejected"].get(code, 0),
                          document["rejected_all_time"].get(code, 0)]
                         for code in sorted({*document["rejected"], *document["rejected_all_time"]}))
    (write_xlsx if output is Format.xlsx else write_csv)([findings, rejected], path)
