"""`chiso766 reconcile` on a simulated province against a "published" snapshot derived from it with
known differences — the portal never told of the dossiers whose sync was never acknowledged, judging
re-appointed dossiers by the re-appointed due, and knowing a procedure our catalogue lacks — finds
each difference, accounts for its points and lists the right dossiers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction

import msgspec
import orjson
import pytest
from typer.testing import CliRunner

from cli.app import app
from schemas import decode_message
from schemas import events as ev
from scoring import lifecycle as lc
from scoring.engine import Engine
from scoring.periods import parse_period
from scoring.report import report_json
from support.publish import portal_snapshot
from support.simulate import Simulator

runner = CliRunner()
COLLECTED = "2026-07-01T06:00:00+07:00"  # "as of" of the snapshot: mid-history, open dossiers included
PERIOD = "year:2026"
NOW = "2026-12-31T00:00:00+07:00"


def decode(lines: list[bytes]) -> list[ev.EventBase]:
    return [event for line in lines for event in decode_message(line) if isinstance(event, ev.EventBase)]


@pytest.fixture(scope="module")
def province(tmp_path_factory, calendar, ruleset):
    lines = list(Simulator(12, 3000, "H15", date(2026, 1, 5), 250, calendar).events())
    events = decode(lines)
    synced = {e.dossier_code for e in events if isinstance(e, ev.PortalSyncAcknowledged)}
    received = {e.dossier_code for e in events if isinstance(e, ev.DossierReceived)}
    never_synced = received - synced
    procedures = {e.procedure_code: e for e in events if isinstance(e, ev.ProcedureUpserted)}
    online = {e.procedure_code for e in events if isinstance(e, ev.DossierReceived) and e.channel == 2}
    # The procedure our catalogue lacks: a commune procedure whose catalogue entry is what its dossiers
    # suggest (what the reconciliation guesses), so only the catalogue indicators stay unexplained.
    missing = next(code for code, p in sorted(procedures.items()) if "-C" in code and p.for_citizens
                   and p.online_level != "none" and code in online)
    ours = tmp_path_factory.mktemp("reconcile") / "ours.jsonl"
    ours.write_bytes(b"\n".join(line for line, event in zip(lines, events, strict=True)
                                if not (isinstance(event, ev.ProcedureUpserted) and event.procedure_code == missing))
                     + b"\n")
    # The portal's view: every dossier it was told of, re-appointed dossiers judged by the new due.
    as_of = int(msgspec.json.decode(b'"' + COLLECTED.encode() + b'"', type=ev.Timestamp).timestamp())
    # Loaded up to "as of", as `reconcile` loads ours (a flag such as a payment is not dated in the state).
    portal = Engine(replace(ruleset, lifecycle=replace(ruleset.lifecycle, score_against_due="reappointed")), calendar)
    portal.load(e for e in events if e.occurred_at.timestamp() <= as_of and (
        getattr(e, "dossier_code", None) not in never_synced or not isinstance(e, ev.DossierEvent)))
    report = report_json(PERIOD, as_of, ruleset, portal.score_units(parse_period(PERIOD), as_of))
    groups_of = {i.code: i.group for i in ruleset.indicators}
    snapshot = portal_snapshot(report["units"], "H15", "2026-07-01", COLLECTED, 2026, groups_of)
    published = ours.parent / "published.json"
    published.write_bytes(orjson.dumps(snapshot))
    ours_engine = Engine(ruleset, calendar)
    ours_engine.load(e for e in decode(ours.read_bytes().splitlines()) if e.occurred_at.timestamp() <= as_of)
    return {"history": ours, "published": published, "never_synced": never_synced, "missing": missing,
            "engine": ours_engine, "as_of": as_of}


def run(province, *extra: str) -> dict:
    result = runner.invoke(app, ["reconcile", str(province["history"]), "--portal", str(province["published"]),
                                 "--format", "json", "--size", "10000", "--now", NOW, *extra])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_reconcile_finds_each_known_difference_and_its_dossiers(province):
    body = run(province)
    assert body["period"] == PERIOD and body["only_ours"] == [] and body["only_published"] == []
    engine, as_of = province["engine"], province["as_of"]
    period = parse_period(PERIOD)
    checked = 0
    for row in body["units"]:
        code = row["code"]
        explanations = {item["kind"]: item for item in row["explanations"]}
        inside = {state.code for state in engine.dossiers.values() if state.unit is not None and state.received_at
                  and state.received_at <= as_of and (code == "H15" or state.unit == code)}
        expected_unsynced = sorted(province["never_synced"] & inside)
        if expected_unsynced:
            assert explanations["unsynced"]["dossiers"] == expected_unsynced
            assert explanations["unsynced"]["points"]["DOSSIER_SYNC"] > 0
        expected_reappointed = sorted(
            c for c in inside - province["never_synced"] if engine.dossiers[c].reappointed is not None
            and lc.classify(engine.dossiers[c], as_of, engine.context.ruleset.lifecycle,
                            engine.context.fallback_due(engine.dossiers[c])) in (lc.Outcome.LATE, lc.Outcome.OVERDUE)
            and lc.classify(engine.dossiers[c], as_of, replace(engine.context.ruleset.lifecycle,
                                                                score_against_due="reappointed"),
                            engine.context.fallback_due(engine.dossiers[c])) in lc.GOOD_OUTCOMES)
        if expected_reappointed:
            assert explanations["reappointed_due"]["dossiers"] == expected_reappointed
            assert explanations["reappointed_due"]["points"].get("ON_TIME", 0) > 0 or len(expected_reappointed) < 3
        expected_unknown = sorted(c for c in inside if engine.dossiers[c].procedure == province["missing"]
                                  and (engine.dossiers[c].received_at >= period.start))
        if expected_unknown:
            assert set(expected_unknown) <= set(explanations["unknown_procedure"]["dossiers"])
        # Everything outside the catalogue indicators (which need the missing procedure's decision and
        # publication dates, which no dossier carries) is accounted for.
        left = {item["code"] for item in row["unexplained"]}
        assert left <= {"PUBLISH_ON_TIME", "PUBLIC_UPDATE_ON_TIME", "PUBLIC_CONTENT_FULL"}, (code, row["unexplained"])
        gap = Fraction(str(row["points"]))
        explained = Fraction(str(row["explained_points"])) + Fraction(str(row["unexplained_points"]))
        assert abs(gap - explained) < Fraction(1, 100), code
        checked += 1
    assert checked == len(engine.directory.units)
    province_row = next(row for row in body["units"] if row["code"] == "H15")
    kinds = {item["kind"] for item in province_row["explanations"]}
    # Every point of 2.1 is accounted for, so no late dossier is put forward as a candidate.
    assert {"unsynced", "reappointed_due", "unknown_procedure"} <= kinds and "late_here" not in kinds


def test_reconcile_pages_codes_and_writes_xlsx(province, tmp_path):
    first = run(province, "--unit", "H15", "--size", "5")
    unsynced = next(item for item in first["units"][0]["explanations"] if item["kind"] == "unsynced")
    assert len(unsynced["dossiers"]) == 5 and unsynced["pages"] == -(-unsynced["count"] // 5)
    second = run(province, "--unit", "H15", "--size", "5", "--page", "2")
    again = next(item for item in second["units"][0]["explanations"] if item["kind"] == "unsynced")
    assert not set(again["dossiers"]) & set(unsynced["dossiers"])
    out = tmp_path / "reconcile.xlsx"
    result = runner.invoke(app, ["reconcile", str(province["history"]), "--portal", str(province["published"]),
                                 "--format", "xlsx", "--out", str(out), "--now", NOW])
    assert result.exit_code == 0, result.output
    from openpyxl import load_workbook

    book = load_workbook(out)
    assert book.sheetnames == ["Đối soát đơn vị", "Chỉ tiêu", "Giải thích"]
    accounted = {row[4] for row in book["Giải thích"].iter_rows(min_row=3, values_only=True)}
    assert accounted and accounted <= {"có", "không"}  # words, not TRUE / FALSE
    table = runner.invoke(app, ["reconcile", str(province["history"]), "--portal", str(province["published"]),
                                "--unit", "H15", "--now", NOW])
    assert table.exit_code == 0 and "Đối soát với Cổng DVCQG" in table.output


def publish_ours(province, ruleset, path) -> None:
    """A "published" snapshot that is our own score: the two sides agree on every number."""
    engine, as_of = province["engine"], province["as_of"]
    report = report_json(PERIOD, as_of, ruleset, engine.score_units(parse_period(PERIOD), as_of))
    groups_of = {i.code: i.group for i in ruleset.indicators}
    path.write_bytes(orjson.dumps(portal_snapshot(report["units"], "H15", "2026-07-01", COLLECTED, 2026, groups_of)))


def test_no_gap_means_no_explanations_and_nothing_unexplained(province, ruleset, tmp_path):
    same = tmp_path / "same.json"
    publish_ours(province, ruleset, same)
    body = run({**province, "published": same})
    assert body["units"]
    for row in body["units"]:
        assert row["points"] == 0 and row["explanations"] == [] and row["unexplained"] == [], row["code"]
        assert row["explained_points"] == 0 and row["unexplained_points"] == 0


def test_late_dossiers_are_candidates_only_for_the_gap_left(province, ruleset, tmp_path):
    same = tmp_path / "same.json"
    publish_ours(province, ruleset, same)
    data = orjson.loads(same.read_bytes())
    on_time = data["indicators"]["progress"]["metrics"]["onTime"]
    on_time["numerator"] = on_time["denominator"]  # the portal counts every one of H15's dossiers on time
    on_time["score"] = float(ruleset.by_code["ON_TIME"].score(on_time["numerator"], on_time["denominator"]))
    same.write_bytes(orjson.dumps(data))
    row = run({**province, "published": same}, "--unit", "H15")["units"][0]
    found = {item["kind"]: item for item in row["explanations"]}
    left = {item["code"]: item["points"] for item in row["unexplained"]}
    assert set(left) == {"ON_TIME"} and found["late_here"]["accounted"] is False
    # Candidates for what the accounted explanations leave, never for more than that.
    assert set(found["late_here"]["points"]) == {"ON_TIME"}
    assert 0 < found["late_here"]["points"]["ON_TIME"] <= left["ON_TIME"]
    for item in row["explanations"]:  # nothing is said about the indicators that agree
        assert set(item["points"]) <= {"ON_TIME"}, item


@pytest.mark.parametrize(("extra", "message"), [
    (["--period", "month:2026-06"], "publishes year:2026 (year to date), not month:2026-06"),
    (["--unit", "H99"], "no unit H99 in our scores or the publication"),
    (["--unit", "h15"], "(did you mean H15?)")])
def test_a_wrong_period_or_unit_is_one_clear_line(province, extra, message):
    result = runner.invoke(app, ["reconcile", str(province["history"]), "--portal", str(province["published"]),
                                 "--now", NOW, *extra])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output


def test_xlsx_into_a_folder_that_does_not_exist_yet(province, tmp_path):
    out = tmp_path / "new" / "folder" / "reconcile.xlsx"
    result = runner.invoke(app, ["reconcile", str(province["history"]), "--portal", str(province["published"]),
                                 "--unit", "H15.01", "--format", "xlsx", "--out", str(out), "--now", NOW])
    assert result.exit_code == 0 and out.stat().st_size > 0, result.output
    folder = runner.invoke(app, ["reconcile", str(province["history"]), "--portal", str(province["published"]),
                                 "--format", "xlsx", "--out", str(tmp_path), "--now", NOW])
    assert folder.exit_code == 2 and "is a folder" in folder.output, folder.output


def test_labels_are_vietnamese_by_default_and_english_on_request(province, ruleset, tmp_path):
    args = ["reconcile", str(province["history"]), "--portal", str(province["published"]), "--unit", "H15",
            "--now", NOW]
    vi = runner.invoke(app, args)
    assert vi.exit_code == 0 and "Tử/mẫu Cổng" in vi.output and "chưa giải thích được" in vi.output, vi.output
    assert "published n/d" not in vi.output and "not explained" not in vi.output
    en = runner.invoke(app, [*args, "--lang", "en"])
    assert en.stdout.startswith("Reconciliation with the national portal") and "published n/d" in en.output
    assert "not explained by our data" in en.output and "Đối soát" not in en.output
    same = tmp_path / "same.json"
    publish_ours(province, ruleset, same)
    agree = runner.invoke(app, [*args[:3], str(same), *args[4:]])
    assert "hai bên khớp: không có chênh lệch" in agree.output and "giải thích" not in agree.output, agree.output


def test_a_page_past_the_last_and_a_renamed_unit_are_said(province, ruleset, tmp_path):
    result = runner.invoke(app, ["reconcile", str(province["history"]), "--portal", str(province["published"]),
                                 "--unit", "H15", "--size", "10000", "--page", "2", "--now", NOW])
    assert result.exit_code == 2 and "--page 2 is past the last page of dossier codes (1 at --size 10000)" in \
        result.output, result.output
    renamed = tmp_path / "renamed.json"
    publish_ours(province, ruleset, renamed)
    data = orjson.loads(renamed.read_bytes())
    data["department"]["name"] = "UBND tỉnh Đắk Lắk"
    data["units"][0]["departmentName"] = "UBND " + data["units"][0]["departmentName"]  # a prefix is no rename
    renamed.write_bytes(orjson.dumps(data))
    notes = run({**province, "published": renamed}, "--lang", "en")["notes"]
    flagged = [note for note in notes if "matched by code alone" in note]
    assert len(flagged) == 1 and flagged[0].startswith("H15 is 'UBND tỉnh Đắk Lắk' in the publication"), notes
    assert "H15 trên Cổng là 'UBND tỉnh Đắk Lắk'" in run({**province, "published": renamed})["notes"][0]
