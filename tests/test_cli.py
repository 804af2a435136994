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
                         "findings"}
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
