"""`chiso766` — the command line. Output for machines is JSON on stdout; people get rich tables."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli import readside, resources, streaming
from cli.common import dump, err, fail, parse_instant
from cli.history import ReadStats, missing, open_history, read_events, write_lines
from cli.labels import LABELS, Language
from cli.simulate import Simulator
from scoring.engine import Engine
from scoring.periods import PeriodError, parse_period
from scoring.report import report_json
from scoring.ruleset import RulesetError

app = typer.Typer(help="chiso766 — real-time Decision 766 service-quality scorer.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
ruleset_app = typer.Typer(help="Work with ruleset files (weights, targets, 0/0 rules).", no_args_is_help=True)
app.add_typer(ruleset_app, name="ruleset")
app.add_typer(streaming.stack_app, name="stack")
app.command("worker")(streaming.worker)
app.command("replay")(streaming.replay)
app.command("scores")(streaming.scores)
app.command("project")(streaming.project)
app.command("api")(readside.api)
app.command("export")(readside.export)
app.command("leaderboard")(readside.leaderboard)
app.command("alerts")(readside.alerts)
# A piped table keeps its full width instead of wrapping every cell at 80 columns.
out = Console(width=None if sys.stdout.isatty() else 200)

RulesetOption = Annotated[Path | None, typer.Option("--ruleset", help="Ruleset JSON file (default: bundled).")]
LangOption = Annotated[Language, typer.Option("--lang", help="Label language: vi or en.")]


def _ruleset(path: Path | None):
    try:
        return resources.load_ruleset(path)
    except (RulesetError, OSError) as error:
        fail(f"cannot use ruleset {path or '(bundled)'}: {error}")


@ruleset_app.command("score")
def ruleset_score(
    input_path: Annotated[str, typer.Argument(metavar="INPUT|-", help="JSON {CODE: {numerator, denominator}}.")] = "-",
    ruleset_path: RulesetOption = None,
) -> None:
    """Score indicator counts: prints {"indicators", "groups", "total"}."""
    ruleset = _ruleset(ruleset_path)
    try:
        raw = sys.stdin.buffer.read() if input_path == "-" else Path(input_path).read_bytes()
        data = orjson.loads(raw)
    except (OSError, orjson.JSONDecodeError) as error:
        fail(f"cannot read counts from {input_path}: {error}")
    if not isinstance(data, dict):
        fail("counts must be a JSON object {CODE: {numerator, denominator} | null}")
    counts: dict[str, tuple[int, int] | None] = {}
    for code, value in data.items():
        if value is None:
            counts[code] = None
            continue
        try:
            numerator, denominator = int(value["numerator"]), int(value["denominator"])
        except (TypeError, KeyError, ValueError):
            fail(f"{code}: expected {{\"numerator\": n, \"denominator\": d}}, got {value!r}")
        if numerator < 0 or denominator < 0 or numerator > denominator:
            fail(f"{code}: need 0 <= numerator <= denominator, got {numerator}/{denominator}")
        counts[code] = (numerator, denominator)
    try:
        dump(ruleset.score(counts).as_json())
    except RulesetError as error:
        fail(str(error))


@ruleset_app.command("check")
def ruleset_check(path: Annotated[Path, typer.Argument(help="Ruleset JSON file.")]) -> None:
    """Validate a ruleset file and print its id and effective date."""
    ruleset = _ruleset(path)
    out.print(f"[green]ok[/] {ruleset.id} effective {ruleset.effective_from}, {len(ruleset.indicators)} indicators")


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 766,
    dossiers: Annotated[int, typer.Option(min=1, help="How many dossiers.")] = 10_000,
    province: Annotated[str, typer.Option(help="Province unit code.")] = "H15",
    start: Annotated[str, typer.Option(help="First day of the history (ISO date).")] = "2026-01-05",
    days: Annotated[int, typer.Option(min=1, max=3650, help="Length of the history in days.")] = 320,
    out_path: Annotated[str, typer.Option("--out", help="FILE.jsonl, FILE.jsonl.gz or - for stdout.")] = "-",
) -> None:
    """Write a seeded, realistic event history of one province."""
    try:
        first_day = date.fromisoformat(start)
    except ValueError:
        fail(f"--start must be an ISO date, got {start!r}")
    simulator = Simulator(seed, dossiers, province, first_day, days, resources.load_calendar())
    count = write_lines(out_path, simulator.events())
    err.print(f"wrote {count:,} events for {dossiers:,} dossiers to {out_path}")


@app.command()
def score(
    history: Annotated[str, typer.Argument(help="History file (.jsonl or .jsonl.gz) or - for stdin.")],
    period: Annotated[str, typer.Option(help="month:YYYY-MM, quarter:YYYY-QN or year:YYYY.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Score as of (default: latest event).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    rejects: Annotated[Path | None, typer.Option(help="Write rejected lines with reasons here.")] = None,
    ruleset_path: RulesetOption = None,
    lang: LangOption = Language.vi,
) -> None:
    """Replay a history through the core and print ranked scores."""
    try:
        reporting = parse_period(period)
    except PeriodError as error:
        fail(str(error))
    if missing(history):
        fail(f"history file {history} does not exist")
    ruleset = _ruleset(ruleset_path)
    cutoff = parse_instant(as_of, "--as-of") if as_of is not None else None
    engine = Engine(ruleset, resources.load_calendar())
    stats = ReadStats()
    with open_history(history) as stream, _progress() as progress:
        task = progress.add_task("replay", total=None)
        reject_file = rejects.open("wb") if rejects else None
        try:
            events = read_events(stream, stats, reject_file)
            if cutoff is not None:
                events = (e for e in events if e.occurred_at.timestamp() <= cutoff)
            engine.load(_ticking(events, progress, task))
        finally:
            if reject_file:
                reject_file.close()
    moment = cutoff if cutoff is not None else engine.latest_event_at
    if moment is None:
        fail(f"{history} holds no valid event ({sum(stats.rejected.values())} rejected)")
    units = engine.score_units(reporting, moment)
    _report_rejects(stats)
    if as_json:
        dump(report_json(reporting.key, moment, ruleset, units))
    else:
        from cli.tables import ranked_table

        out.print(ranked_table(units, reporting.key, moment, ruleset, LABELS[lang]))


def _ticking(events, progress: Progress, task) -> object:
    for count, event in enumerate(events, start=1):
        if count % 20000 == 0:
            progress.update(task, completed=count)
        yield event


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} events"),
                    TimeElapsedColumn(), console=err, transient=True)


def _report_rejects(stats: ReadStats) -> None:
    total = sum(stats.rejected.values())
    err.print(f"{stats.events:,} events read, {total:,} rejected")
    if total:
        err.print("  by reason: " + ", ".join(f"{reason} {n:,}" for reason, n in stats.rejected.most_common()))
        for line, reason in stats.examples[:5]:
            err.print(f"  line {line}: {reason}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
