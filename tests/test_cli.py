"""The CLI contract other tools rely on: ruleset score, simulate, score (shapes, determinism, rejects)."""

from __future__ import annotations

import gzip
import subprocess
import sys

import orjson
import pytest
from typer.testing import CliRunner

from cli.app import app

runner = CliRunner()


def invoke(*args, stdin: bytes | None = None):
    return runner.invoke(app, list(args), input=stdin)


def test_ruleset_score_prints_the_contract_shape():
    counts = {"PAY_DOSSIER_ONLINE": {"numerator": 1608, "denominator": 1733},
              "PAY_FORMALITY_WITH_ONLINE_TX": {"numerator": 18, "denominator": 42},
              "PAY_FORMALITY_WITH_FEE_DOSSIER": {"numerator": 6, "denominator": 42},
              "ELECTRONIC_CERTIFIED_COPY": None}
    result = invoke("ruleset", "score", "-", stdin=orjson.dumps(counts))
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert set(body) == {"indicators", "groups", "total"}
    assert body["groups"]["TTTT"] == 7.0
    assert body["indicators"]["ELECTRONIC_CERTIFIED_COPY"] == 2.0
    assert body["total"] == 7.0 + 2.0 + 6.0 + 6.0  # missing codes: 0/0 under each rule


@pytest.mark.parametrize(("stdin", "message"), [
    (b"{", "cannot read counts"),
    (b'{"ON_TIME": {"numerator": 5}}', "ON_TIME: expected"),
    (b'{"ON_TIME": {"numerator": 5, "denominator": 2}}', "numerator <= denominator"),
    (b'{"NOT_A_CODE": {"numerator": 1, "denominator": 2}}', "NOT_A_CODE"),
])
def test_ruleset_score_bad_input_is_a_clear_error(stdin, message):
    result = invoke("ruleset", "score", "-", stdin=stdin)
    assert result.exit_code == 2
    assert message in result.stderr


def test_ruleset_score_with_a_broken_ruleset_file(tmp_path):
    broken = tmp_path / "r.json"
    broken.write_text('{"id": "x"}')
    result = invoke("ruleset", "score", "--ruleset", str(broken), "-", stdin=b"{}")
    assert result.exit_code == 2 and "missing `effective_from`" in result.stderr


def test_simulate_is_byte_identical_for_the_same_seed(tmp_path):
    paths = [tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz", tmp_path / "c.jsonl.gz"]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        assert invoke("simulate", "--seed", str(seed), "--dossiers", "300", "--out", str(path)).exit_code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    lines = gzip.decompress(paths[0].read_bytes()).splitlines()
    kinds = {orjson.loads(line)["event_type"] for line in lines}
    assert {"unit.upserted", "procedure.upserted", "dossier.received", "dossier.processing_step",
            "dossier.supplement_requested", "dossier.payment_made", "dossier.rated"} <= kinds


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    path = tmp_path_factory.mktemp("h") / "history.jsonl"
    assert invoke("simulate", "--seed", "9", "--dossiers", "3000", "--out", str(path)).exit_code == 0
    return path


def test_score_json_has_the_contract_shape(history):
    result = invoke("score", str(history), "--period", "year:2026", "--json")
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert set(body) == {"period", "as_of", "ruleset", "units"}
    assert body["period"] == "year:2026" and body["ruleset"] == "766-2026.1"
    codes = [u["code"] for u in body["units"]]
    assert codes == sorted(codes)
    unit = body["units"][0]
    assert set(unit) == {"code", "name", "level", "parent", "peer_group", "indicators", "groups", "total", "rank",
                         "findings", "outcomes"}
    assert set(unit["indicators"]["ON_TIME"]) == {"numerator", "denominator", "score"}
    assert len(unit["indicators"]) == 23


def test_simulated_scores_land_in_published_ranges(history):
    body = orjson.loads(invoke("score", str(history), "--period", "year:2026", "--json").stdout)
    province = next(u for u in body["units"] if u["level"] == "province")
    on_time = province["indicators"]["ON_TIME"]
    assert 0.80 <= on_time["numerator"] / on_time["denominator"] <= 0.98
    online = province["indicators"]["ONLINE_DOSSIER_SHARE"]
    assert online["numerator"] / online["denominator"] > 0.5
    assert 50 <= province["total"] <= 95
    overdue_or_late = sum(u["indicators"]["ON_TIME"]["denominator"] - u["indicators"]["ON_TIME"]["numerator"]
                          for u in body["units"] if u["level"] != "province")
    assert overdue_or_late > 0


def test_score_as_of_cuts_the_history(history):
    early = orjson.loads(invoke("score", str(history), "--period", "year:2026", "--json",
                                "--as-of", "2026-03-01T00:00:00+07:00").stdout)
    full = orjson.loads(invoke("score", str(history), "--period", "year:2026", "--json").stdout)
    assert early["as_of"] == "2026-03-01T00:00:00+07:00"
    province = next(u for u in early["units"] if u["level"] == "province")
    assert province["indicators"]["DOSSIER_SYNC"]["denominator"] < \
        next(u for u in full["units"] if u["level"] == "province")["indicators"]["DOSSIER_SYNC"]["denominator"]


def test_malformed_lines_are_counted_and_never_stop_the_run(history, tmp_path):
    noisy = tmp_path / "noisy.jsonl"
    lines = history.read_bytes().splitlines()
    bad = [b"{oops", b'{"event_type": "dossier.teleported", "event_id": "x"}', b"\xff\xfe", b"[]", b"42"]
    noisy.write_bytes(b"\n".join(lines[:100] + bad + lines[100:]) + b"\n")
    rejects = tmp_path / "rejects.txt"
    result = invoke("score", str(noisy), "--period", "year:2026", "--json", "--rejects", str(rejects))
    assert result.exit_code == 0
    assert f"{len(lines):,} events read, 5 rejected" in result.stderr
    assert "unknown_event_type" in result.stderr and "not_json" in result.stderr
    assert "empty_array 1" in result.stderr  # an empty array line is reported, not skipped
    assert len(rejects.read_bytes().splitlines()) == 5
    clean = invoke("score", str(history), "--period", "year:2026", "--json")
    assert orjson.loads(result.stdout) == orjson.loads(clean.stdout), "nothing valid was lost"


def test_score_table_is_ranked_and_in_vietnamese_by_default(history):
    result = invoke("score", str(history), "--period", "month:2026-06")
    assert result.exit_code == 0
    assert "Bảng xếp hạng" in result.stdout and "Hạng" in result.stdout
    english = invoke("score", str(history), "--period", "month:2026-06", "--lang", "en")
    assert "leaderboard" in english.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "month:2026-13"], "malformed period"),
    (["--period", "year:2026", "--as-of", "2026-05-01T00:00:00"], "needs a UTC offset"),
])
def test_score_argument_errors(history, args, message):
    result = invoke("score", str(history), *args)
    assert result.exit_code == 2 and message in result.stderr


def test_score_missing_file():
    result = invoke("score", "/nonexistent.jsonl", "--period", "year:2026")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_console_script_pipes_simulate_into_score():
    command = (f"{sys.executable} -m cli.app simulate --seed 3 --dossiers 500 --out - | "
               f"{sys.executable} -m cli.app score - --period year:2026")
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "Hạng" in done.stdout and "H15.01" in done.stdout


@pytest.mark.parametrize(("value", "message"), [
    (1.5, "ON_TIME.numerator: expected a whole number, got 1.5"),
    (True, "ON_TIME.numerator: expected a whole number, got True"),
    ("3", "ON_TIME.numerator: expected a whole number, got '3'"),
])
def test_ruleset_score_names_a_count_that_is_not_a_whole_number(value, message):
    result = invoke("ruleset", "score", "-", stdin=orjson.dumps({"ON_TIME": {"numerator": value, "denominator": 4}}))
    assert result.exit_code == 2 and message in result.output


def test_ruleset_score_takes_both_counts_null_as_not_applicable():
    published = invoke("ruleset", "score", "-", stdin=b'{"PETITION_PROCESSING_ON_TIME": '
                                                       b'{"numerator": null, "denominator": null}}')
    bare = invoke("ruleset", "score", "-", stdin=b'{"PETITION_PROCESSING_ON_TIME": null}')
    assert published.exit_code == 0, published.output
    assert orjson.loads(published.stdout) == orjson.loads(bare.stdout)
    assert orjson.loads(published.stdout)["indicators"]["PETITION_PROCESSING_ON_TIME"] == 6.0


def _without_findings(report: dict) -> dict:
    return {**report, "units": [{k: v for k, v in unit.items() if k != "findings"} for unit in report["units"]]}


def test_score_reports_every_kind_of_bad_line_and_scores_the_rest_exactly(history, tmp_path):
    lines = history.read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    received = next(e for e in events if e["event_type"] == "dossier.received")
    code, unit = received["dossier_code"], received["unit_code"]
    supplement = next(e for e in events if e["event_type"] == "dossier.supplement_requested")
    ended = next(e for e in events if e["event_type"] == "dossier.status_changed" and e["status"] == 10)

    def event(kind: str, **fields) -> bytes:
        return orjson.dumps({"event_type": kind, "event_id": f"bad-{kind}-{len(fields)}-{sorted(fields)}",
                             "occurred_at": "2026-06-01T09:00:00+07:00", **fields})

    rejected = {
        "not_json": b"{oops", "not_utf8": b"\xff\xfe", "empty_array": b"[]",
        "unknown_event_type": event("dossier.teleported", dossier_code=code),
        "missing_field": event("dossier.status_changed", dossier_code=code),
        "wrong_type": b"42",
        "invalid_value": event("unit.upserted", unit_code="H15.99", name="x", level="agency",
                               working_hours=[["17:00", "07:30"]]),
        "future_time": event("dossier.status_changed", dossier_code=code, status=9,
                             occurred_at="2099-01-01T00:00:00+07:00"),
        "unusable_code": event("dossier.received", dossier_code="X|1", unit_code=unit, procedure_code="P",
                               channel=1, received_at="2026-06-01T09:00:00+07:00"),
        "impossible_timestamp": event("dossier.rated", dossier_code=code, rating="satisfied",
                                      occurred_at="1970-01-02T00:00:00+07:00"),
    }
    # Legal but odd: kept, reported as findings, and no score moves.
    odd = [event("dossier.status_changed", dossier_code=code, status=3, occurred_at=received["occurred_at"]),
           event("dossier.status_changed", dossier_code=ended["dossier_code"], status=4,
                 occurred_at=events[-1]["occurred_at"]),  # the history's last instant: as_of stays
           event("dossier.status_changed", dossier_code="NEVER-RECEIVED", status=9),
           event("dossier.status_changed", dossier_code=supplement["dossier_code"], status=5,
                 occurred_at=supplement["occurred_at"])]
    noisy = tmp_path / "noisy.jsonl"
    noisy.write_bytes(b"\n".join(lines[:50] + list(rejected.values()) + lines[50:] + odd) + b"\n")
    result = invoke("score", str(noisy), "--period", "year:2026", "--json", "--now", "2026-11-30T00:00:00+07:00")
    assert result.exit_code == 0, result.output
    assert f"{len(lines) + len(odd):,} events read, {len(rejected)} rejected" in result.stderr
    for reason in rejected:
        assert f"{reason} 1" in result.stderr, reason
    assert "refused_after_receipt 1" in result.stderr and "status_after_end 1" in result.stderr
    clean = invoke("score", str(history), "--period", "year:2026", "--json", "--now", "2026-11-30T00:00:00+07:00")
    noisy_report, clean_report = orjson.loads(result.stdout), orjson.loads(clean.stdout)
    assert noisy_report["as_of"] == clean_report["as_of"], "the 2099 typo did not move the clock"
    assert _without_findings(noisy_report) == _without_findings(clean_report), "the valid events score the same"


def test_check_lists_problems_per_unit_with_dossiers_and_points(history, tmp_path):
    lines = history.read_bytes().splitlines()
    received = next(e for e in map(orjson.loads, lines) if e["event_type"] == "dossier.received"
                    and e["unit_code"].count(".") == 1)
    code, agency = received["dossier_code"], received["unit_code"]
    typo = orjson.dumps({"event_type": "dossier.status_changed", "event_id": "typo", "dossier_code": code,
                         "status": 9, "occurred_at": "2099-01-01T00:00:00+07:00"})
    noisy = tmp_path / "noisy.jsonl"
    noisy.write_bytes(b"\n".join([*lines, typo, b"{oops"]) + b"\n")
    result = invoke("check", str(noisy), "--period", "year:2026", "--format", "json", "--size", "3",
                    "--now", "2026-11-30T00:00:00+07:00")
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert body["period"] == "year:2026"
    by_unit = {unit["code"]: {p["code"]: p for p in unit["problems"]} for unit in body["units"]}
    province = by_unit["H15"]
    unsynced = province["unsynced"]
    assert unsynced["kind"] == "finding" and unsynced["count"] > 3 and len(unsynced["dossiers"]) == 3
    assert unsynced["pages"] == -(-unsynced["count"] // 3) and unsynced["points"] > 0
    assert province["future_time"]["kind"] == "rejected" and province["future_time"]["dossiers"] == [code]
    assert by_unit["(unattributed)"]["not_json"]["count"] == 1
    assert by_unit[agency]["future_time"]["count"] == 1
    assert by_unit[agency]["unsynced"]["count"] < unsynced["count"]


def test_check_exports_csv_and_xlsx(history, tmp_path):
    from openpyxl import load_workbook

    csv_file, xlsx_file = tmp_path / "check.csv", tmp_path / "check.xlsx"
    for output, path in (("csv", csv_file), ("xlsx", xlsx_file)):
        result = invoke("check", str(history), "--period", "year:2026", "--format", output, "--out", str(path))
        assert result.exit_code == 0, result.output
    text = csv_file.read_text(encoding="utf-8-sig")
    assert "# Kiểm tra dữ liệu" in text and "Chưa đồng bộ lên Cổng DVCQG" in text
    book = load_workbook(xlsx_file)
    assert book.sheetnames == ["Kiểm tra dữ liệu", "Hồ sơ"]
    assert book["Hồ sơ"].max_row > 1


def test_check_says_what_is_wrong_with_its_arguments(history):
    assert "give --out FILE" in invoke("check", str(history), "--format", "csv").output
    assert invoke("check", "/nope.jsonl").exit_code == 2
    assert "unknown problem" in invoke("check", str(history), "--problem", "gremlins").output


@pytest.mark.parametrize(("args", "message"), [
    ([], "give a HISTORY file"),
    (["history.jsonl", "--namespace", "ns"], "exclude each other"),
    (["--namespace", "ns"], "needs --period"),
    (["--namespace", "ns", "--period", "year:2026", "--as-of", "2026-05-01T00:00:00+07:00"], "--as-of and --now"),
    (["--namespace", "ns", "--period", "2026"], "malformed period"),
    (["--namespace", "ns", "--period", "year:2026", "--format", "xlsx"], "give --out FILE"),
])
def test_check_reads_a_history_or_a_namespace(args, message):
    result = invoke("check", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_check_namespace_with_redis_unreachable_is_one_clear_line(monkeypatch):
    # A real connection attempt: nothing listens on port 1.
    monkeypatch.setenv("CHISO766_REDIS_URL", "redis://:secret@127.0.0.1:1/0")
    result = invoke("check", "--namespace", "ns", "--period", "year:2026")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["error: cannot reach Redis at 127.0.0.1:1 (is it running?)"]
    assert "secret" not in result.output


def test_data_that_looks_like_markup_or_a_formula_is_printed_and_exported_as_text(tmp_path):
    from openpyxl import load_workbook

    lines = [{"event_type": "unit.upserted", "event_id": "u", "occurred_at": "2026-01-01T00:00:00+07:00",
              "unit_code": "H15", "name": '=HYPERLINK("http://evil.example/","[/] click")', "level": "province"},
             {"event_type": "dossier.received", "event_id": "r", "occurred_at": "2026-03-02T09:00:00+07:00",
              "dossier_code": "=1+1", "unit_code": "H15", "procedure_code": "P", "channel": 1,
              "received_at": "2026-03-02T09:00:00+07:00"},
             {"event_type": "[/]"}, {"event_type": "dossier.status_changed", "event_id": "c", "status": 9,
                                     "occurred_at": "2026-03-03T09:00:00+07:00", "dossier_code": "Z\u0001"}]
    history = tmp_path / "odd.jsonl"
    history.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    assert invoke("score", str(history), "--period", "year:2026").exit_code == 0
    assert invoke("check", str(history), "--period", "year:2026").exit_code == 0
    xlsx, csv_file = tmp_path / "c.xlsx", tmp_path / "c.csv"
    for output, path in (("xlsx", xlsx), ("csv", csv_file)):
        result = invoke("check", str(history), "--period", "year:2026", "--format", output, "--out", str(path))
        assert result.exit_code == 0, result.output
    cells = [cell for sheet in load_workbook(xlsx) for row in sheet.iter_rows() for cell in row]
    assert not [cell.value for cell in cells if cell.data_type == "f"], "no cell is a formula"
    assert any(cell.value == "=1+1" for cell in cells), "the dossier code is there, as text"
    assert "'=HYPERLINK" in csv_file.read_text(encoding="utf-8-sig")
