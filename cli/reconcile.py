"""`chiso766 reconcile`: our scores against what the portal published, and the dossiers behind the gap."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from cli.common import console, dump, err, fail, not_after, output_file, parse_instant
from cli.history import history_at, missing
from cli.labels import Language
from cli.portal import load_ruleset, read_publication
from cli.portal_labels import TEXT
from scoring.periods import PeriodError, parse_period
from scoring.reconcile import Hypotheses, Ours, explain, gaps, reconcile

out = console(width=None if sys.stdout.isatty() else 200)
NO_DOSSIERS = {
    Language.vi: "giải thích theo từng hồ sơ cần lịch sử sự kiện (HISTORY): phần chiếu của một namespace giữ điểm và "
                 "danh sách hồ sơ mở / trễ, không giữ trạng thái hồ sơ mà các giải thích được tính từ đó",
    Language.en: "dossier-level explanations need the event history (HISTORY): a namespace's projection keeps "
                 "scores and open / late dossier lists, not the dossier states the explanations are scored from"}


class Format(StrEnum):
    table = "table"
    json = "json"
    xlsx = "xlsx"


def reconcile_command(
    history: Annotated[str | None, typer.Argument(help="History file (.jsonl or .jsonl.gz); or --namespace.")] = None,
    portal: Annotated[Path, typer.Option("--portal", help="The published snapshot or province table (JSON).")]
    = Path(),
    namespace: Annotated[str | None, typer.Option("--namespace", help="Read our scores from this namespace's "
                                                                      "projection instead of a history.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Score as of (default: when the portal's copy "
                                                              "was collected).")] = None,
    period: Annotated[str | None, typer.Option(help="Default: the publication's (year to date).")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Only this unit.")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or xlsx.")] = Format.table,
    out_path: Annotated[Path | None, typer.Option("--out", help="File for xlsx.")] = None,
    page: Annotated[int, typer.Option(min=1, help="Page of dossier codes per explanation.")] = 1,
    size: Annotated[int, typer.Option(min=1, max=10_000, help="Dossier codes per page.")] = 20,
    now: Annotated[str | None, typer.Option("--now", help="The moment of processing (default: the wall clock)."
                                            )] = None,
    lang: Annotated[Language, typer.Option("--lang", help="Label language: vi or en.")] = Language.vi,
    store: Annotated[str | None, typer.Option("--store", help="Also store the reconciliation (explanations "
                                                              "included) in this namespace for the API and "
                                                              "dashboard.")] = None,
) -> None:
    """For every unit in both and every indicator: ours against the published numerator, denominator
    and score, the points between them, and the dossiers that explain them; what cannot be
    explained is said. Units on one side only are listed."""
    if portal == Path():
        fail("give the published file with --portal FILE")
    if (history is None) == (namespace is None):
        fail("give a HISTORY file or --namespace NS (one of them)")
    if output is Format.xlsx and out_path is None:
        fail("--format xlsx writes a file: give --out FILE")
    if output is Format.xlsx and out_path is not None:
        output_file(out_path, "--out")
    ruleset = load_ruleset(None)
    publication = read_publication(portal, ruleset)
    try:
        reporting = parse_period(period or publication.period or "")
    except PeriodError as error:
        fail(f"{error} (give --period)")
    if publication.period is not None and reporting.key != publication.period:
        fail(f"{portal} publishes {publication.period} (year to date), not {reporting.key}: the two cannot be "
             f"compared (leave out --period)")
    if history is not None:
        if missing(history):
            fail(f"history file {history} does not exist")
        cutoff = parse_instant(as_of or publication.collected_at or "", "--as-of") \
            if as_of or publication.collected_at else None
        engine, moment = history_at(history, ruleset, cutoff, not_after(now))
        hypotheses = Hypotheses(engine, reporting, moment)
        ours = {code: Ours.from_score(score) for code, score in hypotheses.baseline.items()}
        published = {u.code: u for u in publication.units}
        _known_unit(unit, ours.keys() | published.keys())
        wanted = {code: list(gaps(ours[code], published[code], ruleset))
                  for code in ours.keys() & published.keys() if unit is None or code == unit}
        explanations = explain(hypotheses, wanted)
    else:
        from api.store import read_report
        from cli.readside import read_projection

        report = read_projection(namespace or "", lambda p: read_report(p.client, p.keys, reporting.key))
        if report is None:
            fail(f"no scores for {reporting.key} in namespace {namespace}")
        ours = {row["code"]: Ours.from_json(row) for row in report["units"]}
        _known_unit(unit, ours.keys() | {u.code for u in publication.units})
        explanations = None
    if unit is not None:
        ours = {code: value for code, value in ours.items() if code == unit}
        publication.units = [u for u in publication.units if u.code == unit]
    result = reconcile(publication, ours, ruleset, explanations, page, size, lang.value)
    last = max((item["pages"] for row in result["units"] for item in row["explanations"]), default=1)
    if page > last:
        fail(f"--page {page} is past the last page of dossier codes ({last} at --size {size})")
    result["period"] = reporting.key
    if explanations is None:
        result["notes"] = [NO_DOSSIERS[lang], *result["notes"]]
    if store is not None:
        _store(store, result)
    if output is Format.json:
        dump(result)
    elif output is Format.xlsx:
        from api.export import write_xlsx
        from api.reconcile import reconcile_sheets

        try:
            write_xlsx(reconcile_sheets(result, lang.value), out_path)  # type: ignore[arg-type]
        except OSError as error:
            fail(f"cannot write {out_path}: {error.strerror or error}")
        err.print(f"wrote {out_path}")
    else:
        _print(result, TEXT[lang])


def _known_unit(unit: str | None, codes: set[str]) -> None:
    """`--unit` must name a unit of our scores or of the publication."""
    if unit is None or unit in codes:
        return
    near = [code for code in codes if code.casefold() == unit.casefold()]
    fail(f"no unit {unit} in our scores or the publication" + (f" (did you mean {near[0]}?)" if near else ""))


def _store(namespace: str, result: dict) -> None:
    """Each unit's row with what it was reconciled against, for `/api/reconcile`."""
    import orjson

    from cli.readside import store_hash
    from contracts.keys import RedisKeys

    context = {"period": result["period"], "published": result["published"],
               "explained_from": result.get("explained_from"), "notes": result.get("notes", [])}
    store_hash(RedisKeys(namespace).reconciliation(result["period"]),
               {row["code"]: orjson.dumps({**context, **row}) for row in result["units"]})
    err.print(f"stored the reconciliation of {len(result['units'])} units for {result['period']} in {namespace}")


def _print(result: dict, words: dict[str, str]) -> None:
    published = result["published"]
    out.print(Text.assemble((words["reconcile_title"], "bold"), f" — {result['period']}, {words['published_kind']} "
                            f"{published['kind']} {published['date']}"))
    for row in result["units"]:
        table = Table(title=words["unit_line"].format(code=row["code"], name=row["name"],
                                                      published=row["published_total"], ours=row["our_total"],
                                                      points=row["points"]))
        for column in ("indicator", "published_nd", "published", "ours_nd", "ours", "points"):
            table.add_column(words[column], justify="left" if column == "indicator" else "right")
        for line in row["indicators"]:
            if line["points"] == 0 and line["published"]["numerator"] == line["ours"]["numerator"]:
                continue
            p, o = line["published"], line["ours"]
            table.add_row(f"{line['ref']} {line['code']}", f"{p['numerator']}/{p['denominator']}",
                          f"{p['score']:.2f}", f"{o['numerator']}/{o['denominator']}", f"{o['score']:.2f}",
                          f"{line['points']:+.2f}")
        for group in row["groups"]:
            if group["points"]:
                table.add_row(f"{words['group']} {group['code']}", "", f"{group['published']:.2f}", "",
                              f"{group['ours']:.2f}", f"{group['points']:+.2f}")
        if table.row_count:
            out.print(table)
        else:
            out.print(Text.assemble(table.title, " — ", (words["no_gap"], "green")))  # type: ignore[arg-type]
        for explanation in row["explanations"]:
            mark = "" if explanation["accounted"] else words["candidates"]
            points = ", ".join(f"{code} {value:+.2f}" for code, value in explanation["points"].items())
            out.print(f"  • {explanation['label']}: {explanation['count']} {words['dossiers_n']}, "
                      f"{points or words['no_points']}{mark}")
            if explanation["rules"]:
                out.print("    " + "; ".join(f"{rule}: {count}" for rule, count in explanation["rules"].items()))
            out.print(f"    {words['page']} {explanation['page']}/{explanation['pages']}: "
                      f"{', '.join(explanation['dossiers'])}")
        left = ", ".join(f"{item['code']} {item['points']:+.2f}" for item in row["unexplained"])
        if left:
            out.print(Text(f"  {words['unexplained']}: {left}", style="yellow"))
        elif row["points"] or row["explanations"]:
            out.print(Text(f"  {words['all_explained']}", style="green"))
    if result["only_published"]:
        out.print(f"{words['only_published']}: {', '.join(result['only_published'])}")
    if result["only_ours"]:
        out.print(f"{words['only_ours']}: {', '.join(result['only_ours'])}")
    for note in result.get("notes", []):
        out.print(f"{words['note']}: {note}")
