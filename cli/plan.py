"""`chiso766 plan`: the least a unit must do this period to reach a rank, a band or a total."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from cli.common import console, dump, err, fail, not_after, output_file, parse_instant
from cli.history import history_at, missing, write_lines
from cli.labels import Language
from cli.portal_labels import TEXT
from scoring.calendar import iso
from scoring.periods import PeriodError, parse_period
from scoring.planner import Plan, PlanError, Planner, parse_target, plan_events
from support import resources

out = console(width=None if sys.stdout.isatty() else 200)


def plan_command(
    history: Annotated[str | None, typer.Argument(help="History file (.jsonl or .jsonl.gz).")] = None,
    unit: Annotated[str, typer.Option("--unit", help="The unit to plan for; `all`: every agency and commune.")] = "",
    period: Annotated[str, typer.Option(help="month:YYYY-MM, quarter:YYYY-QN or year:YYYY.")] = "",
    target: Annotated[str, typer.Option(help="rank:N (in the unit's peer group), band:NAME, total:X or next-band."
                                        )] = "",
    namespace: Annotated[str | None, typer.Option("--namespace", help="Not for plans: see the message.")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Also store the plan(s) in this namespace's projection "
                                                              "(for the API, the dashboard and the monthly notice)."
                                              )] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="\"Now\" (default: the latest event).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    emit_events: Annotated[Path | None, typer.Option("--emit-events", help="Write the events the plan assumes "
                                                                            "(JSON lines) to this file.")] = None,
    now: Annotated[str | None, typer.Option("--now", help="The moment of processing (default: the wall clock)."
                                            )] = None,
    lang: Annotated[Language, typer.Option("--lang", help="Label language: vi or en.")] = Language.vi,
) -> None:
    """Project the unit to the end of the period (open dossiers nobody finishes turn overdue at their
    due; everyone else stands still) and find the fewest actions that reach the target: finish named
    open dossiers before their due, issue electronic results, digitise, take fees online.

    A target that cannot be reached this period is not an error: the plan says so, gives the best
    reachable total and rank (`reachable: false` in JSON), and the exit code is 0."""
    if not unit or not period or not target:
        fail("give --unit CODE, --period P and --target rank:N|band:NAME|total:X|next-band")
    if namespace is not None:
        fail("a plan names dossiers and scores them from their states, which only the event history holds: give "
             "the HISTORY file (the API's /api/units/{code}/plan serves plans stored with chiso766 plan … "
             "--store NS)" if history is None else "a HISTORY file and --namespace exclude each other")
    if history is None:
        fail("give the HISTORY file")
    if emit_events is not None:
        if unit == "all":
            fail("--emit-events takes the plan of one unit, not --unit all")
        output_file(emit_events, "--emit-events")
    ruleset = resources.load_ruleset()
    try:
        reporting = parse_period(period)
        wanted = parse_target(target)
        if wanted.kind == "band":
            wanted.threshold(ruleset, [])  # an unknown band name is refused before the history is read
    except (PeriodError, PlanError) as error:
        fail(str(error))
    if missing(history):
        fail(f"history file {history} does not exist")
    cutoff = parse_instant(as_of, "--as-of") if as_of is not None else None
    engine, moment = history_at(history, ruleset, cutoff, not_after(now))
    try:
        planner = Planner(engine, reporting, moment)
        if unit == "all":
            plans = [planner.plan(code, wanted) for code in sorted(engine.directory.units)
                     if engine.directory.units[code].level in ("agency", "commune")]
        else:
            plans = [planner.plan(unit, wanted)]
    except PlanError as error:
        fail(str(error))
    if store is not None:
        store_plans(store, reporting.key, plans)
    if len(plans) > 1:
        if as_json:
            dump([plan.as_json() for plan in plans])
        else:
            for plan in plans:
                print_plan(plan, TEXT[lang])
        return
    result = plans[0]
    if emit_events is not None:
        encoder = msgspec.json.Encoder()
        try:
            count = write_lines(str(emit_events), (encoder.encode(event) for event in plan_events(result)))
        except OSError as error:
            fail(f"cannot write {emit_events}: {error.strerror or error}")
        err.print(f"wrote {count} hypothetical events to {emit_events}: append them to the history and run "
                  f"chiso766 score --period {reporting.key} --as-of {iso(result.projected_at)}")
    if as_json:
        dump(result.as_json())
    else:
        print_plan(result, TEXT[lang])


def store_plans(namespace: str, period: str, plans: list[Plan]) -> None:
    import orjson

    from cli.readside import store_hash
    from contracts.keys import RedisKeys

    store_hash(RedisKeys(namespace).plans(period),
               {f"{plan.unit}|{plan.target.text}": orjson.dumps(plan.as_json()) for plan in plans})
    err.print(f"stored {len(plans)} plan(s) for {period} in namespace {namespace}")


def print_plan(plan: Plan, words: dict[str, str]) -> None:
    vi = words is TEXT[Language.vi]
    out.print(Text(words["plan_head"].format(unit=plan.unit, name=plan.name, target=plan.target.text,
                                             period=plan.period, peer_group=plan.peer_group,
                                             projected=iso(plan.projected_at)), style="bold"))
    out.print(words["baseline"].format(total=float(plan.baseline_total), rank=plan.baseline_rank,
                                       needed=float(plan.threshold)))
    if plan.actions:
        table = Table(title=words["actions_title"].format(n=len(plan.actions), candidates=plan.candidates))
        for column in ("#", "action", "dossier", "due", "officer", "by", "points"):
            table.add_column(words.get(column, column), justify="right" if column in ("#", "points") else "left")
        for index, action in enumerate(plan.actions, start=1):
            row = action.as_json()
            table.add_row(str(index), row["label"] if vi else row["label_en"], row["dossier"],
                          (row["due"] or "—")[:16], row["officer"] or "—", row["at"][:16], f"{row['points']:+.2f}")
        out.print(table)
    ties = words["tied"].format(codes=", ".join(plan.ties)) if plan.ties else ""
    out.print(Text(words["after"].format(total=float(plan.total_after), rank=plan.rank_after, ties=ties),
                   style="green" if plan.reachable else "yellow"))
    note = plan.note_vi if vi else plan.note
    if note:
        out.print(Text(note, style="yellow" if not plan.reachable else ""))
