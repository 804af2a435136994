"""`chiso766` — the command line. Output for machines is JSON on stdout; people get rich tables."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import Progress
from rich.text import Text

from cli import current, ingesting, readside, streaming, subscribe
from cli.check import check, report_findings
from cli.common import PERIOD_HELP, console, dump, err, fail, not_after, parse_instant
from cli.history import load_history, missing, progress_columns, report_rejects, write_lines
from cli.labels import LABELS, Language
from cli.outages import one_line_outages
from cli.plan import plan_command
from cli.portal import portal_app
from cli.reconcile import reconcile_command
from schemas.events import EARLIEST_YEAR, LATEST_YEAR, usable_code
from scoring.engine import Engine
from scoring.periods import PeriodError, parse_period
from scoring.report import report_json
from scoring.ruleset import RulesetError
from support import resources
from support.simulate import Simulator

app = typer.Typer(help="chiso766 — real-time Decision 766 service-quality scorer.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
ruleset_app = typer.Typer(help="Work with ruleset files (weights, targets, 0/0 rules).", no_args_is_help=True)
app.add_typer(ruleset_app, name="ruleset")
app.add_typer(streaming.stack_app, name="stack")
app.add_typer(portal_app, name="portal")
app.command("worker")(streaming.worker)
app.command("replay")(streaming.replay)
app.command("scores")(streaming.scores)
app.command("project")(streaming.project)
app.command("api")(readside.api)
app.command("export")(readside.export)
app.command("leaderboard")(readside.leaderboard)
app.command("alerts")(subscribe.alerts)
app.command("acknowledge")(subscribe.acknowledge)
app.command("digest")(subscribe.digest)
app.command("check")(check)
app.command("import")(ingesting.import_archive)
app.command("gateway")(ingesting.gateway)
app.command("reconcile")(reconcile_command)
app.command("plan")(plan_command)
app.command("namespace")(current.namespace)
# A piped table keeps its full width instead of wrapping every cell at 80 columns.
out = console(width=None if sys.stdout.isatty() else 200)

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
        counts[code] = _published_count(code, value)
    try:
        dump(ruleset.score(counts).as_json())
    except RulesetError as error:
        fail(str(error))


def _published_count(code: str, value: object) -> tuple[int, int] | None:
    """One indicator's {numerator, denominator}: whole numbers only (1.5, true or "3" name the field
    rather than being cast), and N/A as `null` or as both counts `null` (how the portal publishes it)."""
    if value is None:
        return None
    if not isinstance(value, dict) or "numerator" not in value or "denominator" not in value:
        fail(f"{code}: expected {{\"numerator\": n, \"denominator\": d}}, got {value!r}")
    numerator, denominator = value["numerator"], value["denominator"]
    if numerator is None and denominator is None:
        return None
    for field, number in (("numerator", numerator), ("denominator", denominator)):
        if type(number) is not int:
            fail(f"{code}.{field}: expected a whole number, got {number!r}")
    if numerator < 0 or denominator < 0 or numerator > denominator:
        fail(f"{code}: need 0 <= numerator <= denominator, got {numerator}/{denominator}")
    return numerator, denominator


@ruleset_app.command("check")
def ruleset_check(path: Annotated[Path, typer.Argument(help="Ruleset JSON file.")]) -> None:
    """Validate a ruleset file and print its id and effective date."""
    ruleset = _ruleset(path)
    out.print(Text.assemble(("ok", "green"), f" {ruleset.id} effective {ruleset.effective_from}, "
                                             f"{len(ruleset.indicators)} indicators"))


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 766,
    dossiers: Annotated[int, typer.Option(min=1, help="How many dossiers.")] = 10_000,
    province: Annotated[str, typer.Option(help="Province unit code.")] = "H15",
    start: Annotated[str, typer.Option(help="First day of the history (ISO date).")] = "2026-01-05",
    days: Annotated[int, typer.Option(min=1, max=3650, help="Length of the history in days.")] = 320,
    out_path: Annotated[str, typer.Option("--out", help="FILE.jsonl, FILE.jsonl.gz or - for stdout.")] = "-",
    output_format: Annotated[str, typer.Option("--format", help="native (chiso766 events) or dvcqg (the"
                                               " province's sync calls, for `import` and the gateway).")] = "native",
    facts: Annotated[str, typer.Option("--facts", help="all, or sync: only the facts the dvcqg sync format"
                                       " carries (the native side of the equivalence).")] = "all",
) -> None:
    """Write a seeded, realistic event history of one province."""
    if output_format not in ("native", "dvcqg") or facts not in ("all", "sync"):
        fail(f"--format is native or dvcqg and --facts all or sync, got {output_format!r} / {facts!r}")
    try:
        first_day = date.fromisoformat(start)
    except ValueError:
        fail(f"--start must be an ISO date, got {start!r}")
    last_day = first_day + timedelta(days=days)
    if first_day.year < EARLIEST_YEAR or last_day.year > LATEST_YEAR:
        fail(f"the history must fall in {EARLIEST_YEAR}-{LATEST_YEAR} (the years events can have): "
             f"{first_day} + {days} days ends {last_day}")
    if not province or not usable_code(province) or "." in province:
        fail(f"--province must be a unit code without `.`, `|` or control characters, got {province!r}")
    if output_format == "dvcqg":
        from support.dvcqg_sim import sync_archive

        count = write_lines(out_path, sync_archive(seed, dossiers, province, start=first_day, days=days,
                                                   calendar=resources.load_calendar()))
        err.print(f"wrote {count:,} sync calls (and unit lines) for {dossiers:,} dossiers to {out_path}")
        return
    simulator = Simulator(seed, dossiers, province, first_day, days, resources.load_calendar(),
                          sync_facts_only=facts == "sync")
    with Progress(*progress_columns(True), console=err, transient=True) as progress:
        tasks = {"dossiers": progress.add_task("simulate", total=dossiers, count=0, what="dossiers")}

        def advance(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task("write", total=total, count=0, what=stage)
            progress.update(tasks[stage], completed=done, count=done)

        count = write_lines(out_path, simulator.events(advance))
    err.print(f"wrote {count:,} events for {dossiers:,} dossiers to {out_path}")


NowOption = Annotated[str | None, typer.Option(
    "--now", help="The moment of processing (default: the wall clock); events dated after it are refused.")]


@app.command()
def score(
    history: Annotated[str, typer.Argument(help="History file (.jsonl or .jsonl.gz) or - for stdin.")],
    period: Annotated[str, typer.Option(help=PERIOD_HELP)],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Score as of (default: latest event).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    rejects: Annotated[Path | None, typer.Option(help="Write rejected lines with reasons here.")] = None,
    now: NowOption = None,
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
    stats = load_history(history, engine, cutoff, not_after(now), rejects)
    moment = cutoff if cutoff is not None else engine.latest_event_at
    if moment is None:
        fail(f"{history} holds no valid event ({sum(stats.rejected.values())} rejected)")
    units = engine.score_units(reporting, moment)
    report_rejects(stats)
    report_findings(units)
    if as_json:
        dump(report_json(reporting.key, moment, ruleset, units))
    else:
        from cli.tables import ranked_table

        out.print(ranked_table(units, reporting.key, moment, ruleset, LABELS[lang]))


def main() -> None:
    with one_line_outages():
        app()


if __name__ == "__main__":
    main()
