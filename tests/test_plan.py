"""`chiso766 plan` keeps its promise: for several units and targets, the plan's events appended to
the history and scored with `chiso766 score --as-of PROJECTED_AT` give the total and rank it promised;
without any one of its actions the target is missed; an unreachable target says so with the best
reachable; the baseline is the history itself scored at the period's end."""

from __future__ import annotations

from datetime import date

import orjson
import pytest
from typer.testing import CliRunner

from cli.app import app
from schemas import decode_message
from schemas import events as ev
from scoring.engine import Engine
from scoring.periods import parse_period
from support.simulate import Simulator

runner = CliRunner()
PERIOD = "month:2026-05"
NOW = "2026-12-01T00:00:00+07:00"


@pytest.fixture(scope="module")
def history(tmp_path_factory, calendar):
    # 140 days from 5 January: the history stops on 25 May, mid-period, with dossiers still open.
    path = tmp_path_factory.mktemp("plan") / "history.jsonl"
    path.write_bytes(b"\n".join(Simulator(21, 1500, "H15", date(2026, 1, 5), 140, calendar).events()) + b"\n")
    return path


def invoke(*args: str):
    result = runner.invoke(app, [*args, "--now", NOW])
    assert result.exit_code == 0, result.output
    return result


def score(path, as_of: str) -> dict:
    body = orjson.loads(invoke("score", str(path), "--period", PERIOD, "--as-of", as_of, "--json").stdout)
    return {unit["code"]: unit for unit in body["units"]}


def decode(lines: list[bytes]) -> list[ev.EventBase]:
    return [e for line in lines for e in decode_message(line) if isinstance(e, ev.EventBase)]


def meets(plan: dict, unit: dict) -> bool:
    target = plan["target"]
    if target.startswith("rank:"):
        return unit["rank"] <= int(target[5:])
    return unit["total"] >= plan["target_total"]


@pytest.mark.parametrize(("unit", "target"), [
    ("H15.05", "rank:3"), ("H15.08", "band:Tốt"), ("H15.X002", "total:80"), ("H15.X006", "rank:1"),
    ("H15.10", "band:Good")])
def test_a_plan_replayed_through_the_scorer_gives_what_it_promised(history, tmp_path, ruleset, calendar, unit,
                                                                   target):
    emitted = tmp_path / "plan-events.jsonl"
    plan = orjson.loads(invoke("plan", str(history), "--unit", unit, "--period", PERIOD, "--target", target,
                               "--json", "--emit-events", str(emitted)).stdout)
    baseline = score(history, plan["projected_at"])[unit]
    assert (plan["baseline_total"], plan["baseline_rank"]) == (baseline["total"], baseline["rank"])
    combined = tmp_path / "with-plan.jsonl"
    combined.write_bytes(history.read_bytes() + emitted.read_bytes())
    after = score(combined, plan["projected_at"])
    assert (after[unit]["total"], after[unit]["rank"]) == (plan["total_after"], plan["rank_after"]), plan
    if not plan["reachable"]:
        assert "cannot be reached" in plan["note"] and not meets(plan, after[unit])
        return
    assert meets(plan, after[unit])
    if not plan["actions"]:  # the projection meets the target by itself
        assert meets(plan, baseline) and "nothing needs doing" in plan["note"]
        return
    assert all(a["dossier"].startswith(unit) for a in plan["actions"])
    assert all(a["at"] <= a["due"] for a in plan["actions"] if a["kind"] == "finish")  # before their due
    assert plan["total_after"] == pytest.approx(plan["baseline_total"] + sum(a["points"] for a in plan["actions"]))
    # Minimal: the history with all the plan's events but one action's misses the target.
    base = decode(history.read_bytes().splitlines())
    planned = decode(emitted.read_bytes().splitlines())
    period = parse_period(PERIOD)
    moment = int(max(e.occurred_at for e in base).timestamp())
    assert moment < period.end
    for action in plan["actions"]:
        prefix = f"plan-{action['dossier']}-"
        kind = {"finish": ("finish", "result"), "e_result": ("result",), "digitise": ("digitise",),
                "pay_online": ("pay",)}[action["kind"]]
        without = [e for e in planned if not any(e.event_id.startswith(prefix + k) for k in kind)]
        assert len(without) < len(planned)
        engine = Engine(ruleset, calendar)
        engine.load([*base, *without])
        units = {u.code: u for u in engine.score_units(period, period.end)}
        scored = {"total": float(units[unit].card.total), "rank": units[unit].rank}
        assert not meets(plan, scored), (action, scored)


def test_an_unreachable_target_says_so_and_gives_the_best_reachable(history):
    plan = orjson.loads(invoke("plan", str(history), "--unit", "H15.03", "--period", PERIOD, "--target",
                               "total:100", "--json").stdout)
    assert plan["reachable"] is False and plan["total_after"] < 100
    assert plan["total_after"] >= plan["baseline_total"] and "cannot be reached" in plan["note"]
    table = invoke("plan", str(history), "--unit", "H15.03", "--period", PERIOD, "--target", "total:100")
    assert "không thể đạt total:100" in table.output and "sau kế hoạch:" in table.output  # Vietnamese by default
    assert "cannot be reached" not in table.output and "baseline" not in table.output
    english = invoke("plan", str(history), "--unit", "H15.03", "--period", PERIOD, "--target", "total:100",
                     "--lang", "en")
    assert "cannot be reached" in english.output and "baseline (nobody acts)" in english.output
    assert "không thể đạt" not in english.output


def test_bad_plans_are_one_clear_line(history):
    for args, message in [(["--target", "rank:0"], "target must be"), (["--target", "band:Siêu"], "unknown band"),
                          (["--target", "rank:2", "--unit", "H99"], "no unit"),
                          (["--target", "rank:2", "--period", "month:2026-01"], "nothing done now"),
                          (["--target", "rank:99"], "is beyond the peer group agencies:H15: it has"),
                          (["--target", "rank:2", "--period", "month:2027-06"], "month:2027-06 has not begun")]:
        base = {"--unit": "H15.01", "--period": PERIOD}
        for flag, value in zip(args[::2], args[1::2], strict=True):
            base[flag] = value
        result = runner.invoke(app, ["plan", str(history), *[x for kv in base.items() for x in kv], "--now", NOW])
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_emitted_events_go_into_a_new_folder_and_one_unit_only(history, tmp_path):
    emitted = tmp_path / "new" / "plan.jsonl"
    invoke("plan", str(history), "--unit", "H15.05", "--period", PERIOD, "--target", "rank:3",
           "--emit-events", str(emitted))
    assert emitted.exists()
    # `--unit all` with `--emit-events` is refused before anything is computed or stored.
    result = runner.invoke(app, ["plan", str(history), "--unit", "all", "--period", PERIOD, "--target",
                                 "next-band", "--store", "never-used", "--emit-events", str(emitted), "--now", NOW])
    assert result.exit_code == 2 and "not --unit all" in result.output and "stored" not in result.output, \
        result.output


def test_usage_errors_come_before_the_history_is_read_and_help_says_unreachable_exits_0(tmp_path):
    never = str(tmp_path / "never-read.jsonl")
    for args, message in [(["--target", "band:Siêu"], "unknown band 'Siêu'"), (["--target", "total:abc"], "total:X"),
                          (["--target", ""], "rank:N|band:NAME|total:X|next-band")]:
        result = runner.invoke(app, ["plan", never, "--unit", "H15.01", "--period", PERIOD, *args])
        assert result.exit_code == 2 and message in result.output and "does not exist" not in result.output, \
            (args, result.output)
    assert "exit code is 0" in runner.invoke(app, ["plan", "--help"]).output
