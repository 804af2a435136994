"""The read side against a real Redis filled by the real pipeline: the HTTP API, schemathesis, the
monthly export, and the subscriber commands."""

from __future__ import annotations

import asyncio
import csv
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import orjson
import pytest
import redis

from streams import replay
from support.stack import free_port
from tests.integration.conftest import WorkerProcess, chiso766, settings_for
from tests.integration.test_pipeline import stream_report

pytestmark = pytest.mark.integration
NAMESPACE = "readside"
TOKEN = "s3cret-for-tests"
PERSONAL_KEYS = {"applicant", "applicant_name", "citizen", "citizen_name", "full_name", "phone", "phone_number",
                 "id_number", "national_id", "address", "email", "birth_date"}


@dataclass
class ApiServer:
    url: str
    namespace: str
    process: subprocess.Popen

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=30)


def start_api(namespace: str, log_path) -> ApiServer:
    port = free_port()
    log = log_path.open("ab")
    process = subprocess.Popen([sys.executable, "-m", "cli.app", "api", "--namespace", namespace, "--port", str(port)],
                               env={**os.environ, "CHISO766_API_TOKEN": TOKEN}, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return ApiServer(url, namespace, process)
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.2)


def stop_api(server: ApiServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


@pytest.fixture(scope="module")
def api_server(local_stack, history_file, tmp_path_factory):
    chiso766("replay", str(history_file), "--namespace", NAMESPACE, "--wait")
    server = start_api(NAMESPACE, tmp_path_factory.mktemp("api") / "api.log")
    yield server
    stop_api(server)


def all_pages(server: ApiServer, path: str, items: str, **params) -> list[dict]:
    found, page = [], 1
    while True:
        body = server.get(path, page=page, size=7, **params).json()
        found += body[items]
        if len(found) >= body.get("total", body.get("total_units", 0)):
            return found
        page += 1


@pytest.mark.parametrize("period", ["year:2026", "month:2026-05"])
def test_leaderboard_and_unit_pages_carry_the_projected_scores(api_server, period):
    report = {unit["code"]: unit for unit in stream_report(NAMESPACE, period)["units"]}
    previous = {unit["code"]: unit for unit in stream_report(NAMESPACE, "month:2026-04")["units"]} \
        if period == "month:2026-05" else {}
    seen = set()
    for group in api_server.get("/api/groups", period=period).json()["groups"]:
        rows = all_pages(api_server, "/api/leaderboard", "units", period=period, group=group)
        assert [row["rank"] for row in rows] == sorted(row["rank"] for row in rows)
        for row in rows:
            expected = report[row["code"]]
            assert (row["rank"], row["total"], row["groups"]) == (expected["rank"], expected["total"],
                                                                  expected["groups"])
            if row["code"] in previous:
                assert row["change"] == round(expected["total"] - previous[row["code"]]["total"], 2)
                assert row["movement"] == previous[row["code"]]["rank"] - expected["rank"]
            seen.add(row["code"])
    assert seen == set(report)
    for code, expected in report.items():
        unit = api_server.get(f"/api/units/{code}", period=period).json()
        assert unit["total"] == expected["total"]
        assert {i["code"]: (i["numerator"], i["denominator"], i["score"]) for i in unit["indicators"]} == {
            c: (v["numerator"], v["denominator"], v["score"]) for c, v in expected["indicators"].items()}
        assert sum(group["max"] for group in unit["groups"]) == 100
        assert {child["code"] for child in unit["children"]} == {
            other for other, body in report.items() if body["parent"] == code}
        assert [point["period"] for point in unit["trend"]] == sorted(point["period"] for point in unit["trend"])


def test_dossier_lists_are_paged_in_due_order_and_match_the_projection(api_server):
    client = redis.Redis.from_url(os.environ["CHISO766_REDIS_URL"])
    keys = sorted(key.decode() for key in client.scan_iter(f"{NAMESPACE}:overdue:unit:*"))
    assert keys, "the history leaves overdue dossiers"
    for key in keys[:4]:
        unit = key.rsplit(":", 1)[1]
        rows = all_pages(api_server, f"/api/units/{unit}/dossiers", "dossiers", list="overdue")
        assert [row["dossier"] for row in rows] == [code.decode() for code in client.zrange(key, 0, -1)]
        assert all(row["unit"] == unit and row["due"] and row["procedure"] for row in rows)
    late_keys = sorted(key.decode() for key in client.scan_iter(f"{NAMESPACE}:late:2026-05:unit:*"))
    assert late_keys, "some dossiers were completed late in May"
    unit = late_keys[0].rsplit(":", 1)[1]
    rows = all_pages(api_server, f"/api/units/{unit}/late", "dossiers", month="2026-05")
    assert [row["dossier"] for row in rows] == [code.decode() for code in client.zrange(late_keys[0], 0, -1)]
    assert all(row["completed"].startswith("2026-05") and row["completed"] > row["due"] for row in rows)
    officer = rows[0]["officer"]
    held = api_server.get(f"/api/officers/{officer}/dossiers", list="overdue").json()
    assert held["total"] == client.zcard(f"{NAMESPACE}:overdue:officer:{officer}")
    officers = api_server.get(f"/api/units/{unit}/officers", period="month:2026-05").json()["officers"]
    assert officer in {row["officer"] for row in officers}


@pytest.mark.parametrize(("path", "params", "status", "error"), [
    ("/api/units/NOPE", {"period": "year:2026"}, 404, "unknown_unit"),
    ("/api/units/H15/dossiers", {"page": 9999}, 404, "page_out_of_range"),
    ("/api/units/H15.01", {"period": "2026"}, 400, "malformed_period"),
    ("/api/units/H15.01", {"period": "year:0000"}, 400, "malformed_period"),
    ("/api/leaderboard", {"period": "year:2026", "group": "nowhere"}, 404, "unknown_group"),
    ("/api/leaderboard", {"period": "year:2026", "size": 0}, 422, "invalid_request"),
    ("/api/units/H15.01/late", {"month": "2026-13"}, 422, "invalid_request"),
    ("/api/alerts", {"kind": "everything"}, 422, "invalid_request"),
    ("/api/leaderboard", {"period": "year:2026", "group": "x" * 3000}, 414, "query_too_long"),
    ("/api/quality", {"period": "year:2026", "unit": "NOPE"}, 404, "unknown_unit"),
    ("/api/quality", {"period": "year:2031"}, 404, "unknown_period"),
    ("/api/quality", {"period": "2026"}, 400, "malformed_period"),
])
def test_bad_requests_get_a_4xx_with_a_clear_json_error(api_server, path, params, status, error):
    response = api_server.get(path, **params)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error and body["detail"]


def seed_rejections(client: redis.Redis, period: str, counts: dict[str, int]) -> dict[str, int]:
    """Add refused events the way a worker does (its side is tested in test_pipeline: this history
    is all valid); returns what the period's hash holds afterwards."""
    for reason, count in counts.items():
        client.hincrby(f"{NAMESPACE}:rejected:{period}", reason, count)
        client.hincrby(f"{NAMESPACE}:rejected", reason, count)
    return {reason.decode(): int(n) for reason, n in client.hgetall(f"{NAMESPACE}:rejected:{period}").items()}


def test_quality_counts_come_from_the_projection(api_server):
    client = redis.Redis.from_url(os.environ["CHISO766_REDIS_URL"])
    rejected = seed_rejections(client, "year:2026", {"not_json": 3, "future_time": 1})
    report = {unit["code"]: unit for unit in stream_report(NAMESPACE, "year:2026")["units"]}
    expected = {code: {name: n for name, n in unit["findings"].items() if n} for code, unit in report.items()}
    assert any(expected.values()), "the simulated history has findings"
    body = api_server.get("/api/quality", period="year:2026").json()
    assert set(body) == {"period", "as_of", "units", "rejected", "rejected_all_time", "labels"}
    assert body["period"] == "year:2026" and body["as_of"] == stream_report(NAMESPACE, "year:2026")["as_of"]
    assert {row["code"]: row["findings"] for row in body["units"]} == {c: f for c, f in expected.items() if f}
    assert body["rejected"] == rejected
    assert body["rejected_all_time"]["not_json"] >= 3
    assert body["labels"]["not_json"] == {"vi": "Không phải JSON", "en": "Not JSON"}
    assert all(code in body["labels"] for row in body["units"] for code in row["findings"])
    # A unit and what is below it; the unit itself even with no findings.
    province = api_server.get("/api/quality", period="year:2026", unit="H15").json()
    assert province["units"][0] == {"code": "H15", "name": report["H15"]["name"], "findings": expected["H15"]}
    assert {row["code"] for row in province["units"]} == {"H15"} | {c for c, f in expected.items() if f}
    clean = next(code for code, f in expected.items() if not f and report[code]["parent"])
    assert api_server.get("/api/quality", period="year:2026", unit=clean).json()["units"] == [
        {"code": clean, "name": report[clean]["name"], "findings": {}}]


def test_check_reads_the_same_counts_from_a_namespace(api_server, tmp_path):
    from openpyxl import load_workbook

    seed_rejections(redis.Redis.from_url(os.environ["CHISO766_REDIS_URL"]), "year:2026", {"not_json": 1})
    expected = api_server.get("/api/quality", period="year:2026", unit="H15").json()
    done = chiso766("check", "--namespace", NAMESPACE, "--period", "year:2026", "--unit", "H15", "--format", "json")
    assert orjson.loads(done.stdout) == expected  # the same store code as the API
    assert "Chỉ có số lượng" in done.stderr  # a namespace keeps no dossier codes, and says so
    finding = next(iter(expected["units"][0]["findings"]))
    table = chiso766("check", "--namespace", NAMESPACE, "--period", "year:2026", "--lang", "en")
    assert expected["labels"][finding]["en"] in table.stdout and "Counts only" in table.stderr
    assert "Refused events" in table.stdout and "Not JSON" in table.stdout
    xlsx = tmp_path / "check.xlsx"
    chiso766("check", "--namespace", NAMESPACE, "--period", "year:2026", "--unit", "H15", "--format", "xlsx",
             "--out", str(xlsx))
    book = load_workbook(xlsx)
    assert book.sheetnames == ["Kiểm tra dữ liệu", "Sự kiện bị từ chối"]
    rows = list(book["Kiểm tra dữ liệu"].iter_rows(min_row=2, values_only=True))
    assert {(code, problem): count for code, _, problem, _, count in rows} == {
        (unit["code"], problem): count for unit in expected["units"] for problem, count in unit["findings"].items()}
    refused = {row[0]: row[2:] for row in book["Sự kiện bị từ chối"].iter_rows(min_row=2, values_only=True)}
    assert refused["not_json"] == (expected["rejected"]["not_json"], expected["rejected_all_time"]["not_json"])
    only = orjson.loads(chiso766("check", "--namespace", NAMESPACE, "--period", "year:2026", "--problem", "not_json",
                                 "--format", "json").stdout)
    assert only["units"] == [] and set(only["rejected"]) == {"not_json"}
    for args, message in ((("--unit", "NOPE"), "NOPE"), (("--period", "year:2031"), "year:2031")):
        failed = chiso766("check", "--namespace", NAMESPACE, "--period", "year:2026", *args, check=False)
        assert failed.returncode == 2 and message in failed.stderr and "Traceback" not in failed.stderr


def test_public_responses_carry_no_personal_data(api_server):
    bodies = [api_server.get("/api/leaderboard", period="year:2026", group="agencies:H15").json(),
              api_server.get("/api/units/H15.01", period="year:2026").json(),
              api_server.get("/api/units/H15.01/dossiers", list="overdue").json(),
              api_server.get("/api/units/H15.01/late", month="2026-05").json(),
              api_server.get("/api/alerts", limit=100).json(),
              api_server.get("/api/quality", period="year:2026").json()]

    def keys(value) -> set[str]:
        if isinstance(value, dict):
            return set(value) | set().union(*(keys(item) for item in value.values()))
        if isinstance(value, list):
            return set().union(*(keys(item) for item in value)) if value else set()
        return set()

    assert not keys(bodies) & PERSONAL_KEYS


def test_the_rebuild_endpoint_needs_the_token_and_a_worker_carries_it_out(api_server, local_stack, tmp_path):
    url = f"{api_server.url}/api/admin/rebuild"
    assert httpx.post(url).status_code == 401
    assert httpx.post(url, headers={"Authorization": "Bearer wrong"}).json()["error"] == "unauthorized"
    accepted = httpx.post(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert accepted.status_code == 202
    request = accepted.json()["request"]
    client = redis.Redis.from_url(local_stack.redis_url)
    settings = settings_for(local_stack, NAMESPACE)
    worker = WorkerProcess(settings, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not client.hget(f"{NAMESPACE}:commands:{request}", "token"):
            assert time.monotonic() < deadline, "no worker took the rebuild request"
            time.sleep(0.2)
        token = client.hget(f"{NAMESPACE}:commands:{request}", "token").decode()
        sources = [f"{kind}{n}" for kind in "dp" for n in range(settings.partitions)]
        asyncio.run(replay.wait_for(settings, replay.Published(token, 0, 0, 0, sources), 120,
                                    worker=worker.process))
    finally:
        worker.stop()
    # The worker took it, so none is pending; another within the interval (60 s) is refused, saying when.
    assert client.get(f"{NAMESPACE}:command-pending:rebuild") is None
    again = httpx.post(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert again.status_code == 429 and again.json()["error"] == "rate_limited" and int(again.headers["retry-after"])
    province = next(u for u in stream_report(NAMESPACE, "year:2026")["units"] if u["code"] == "H15")
    assert api_server.get("/api/units/H15", period="year:2026").json()["total"] == province["total"]


def test_live_events_stream_scores_and_filtered_alerts(api_server, local_stack):
    client = redis.Redis.from_url(local_stack.redis_url)
    received: list[tuple[str, dict]] = []
    with httpx.stream("GET", f"{api_server.url}/api/live", params={"unit": "H15.01", "kind": "overdue"},
                      timeout=20) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        time.sleep(0.5)  # subscribed by now
        client.publish(f"{NAMESPACE}:alerts:live", orjson.dumps({"kind": "approaching", "unit": "H15.01"}))
        client.publish(f"{NAMESPACE}:alerts:live", orjson.dumps({"kind": "overdue", "unit": "H15.02"}))
        client.publish(f"{NAMESPACE}:alerts:live", orjson.dumps({"kind": "overdue", "unit": "H15.01", "n": 1}))
        client.publish(f"{NAMESPACE}:scores:live", orjson.dumps({"period": "year:2026", "as_of": "x"}))
        event = None
        for line in lines:
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                received.append((event, orjson.loads(line.split(":", 1)[1])))
                if len(received) == 2:
                    break
    assert received == [("alert", {"kind": "overdue", "unit": "H15.01", "n": 1}),
                        ("scores", {"period": "year:2026", "as_of": "x"})]


def test_a_burst_of_events_costs_a_reading_client_nothing_but_what_it_is_told_it_lost(api_server, local_stack):
    """A replay publishes thousands of alerts in a second: a page reading its stream keeps it, gets
    the newest events, and is told how many older ones were skipped (each accounted for)."""
    client = redis.Redis.from_url(local_stack.redis_url)
    alerts, lost, scores = 0, 0, []
    with httpx.stream("GET", f"{api_server.url}/api/live", timeout=30) as response:
        lines = response.iter_lines()
        time.sleep(0.5)  # subscribed by now
        pipe = client.pipeline(transaction=False)
        for number in range(3000):
            pipe.publish(f"{NAMESPACE}:alerts:live", orjson.dumps({"kind": "overdue", "unit": "H15.01", "n": number}))
        pipe.publish(f"{NAMESPACE}:scores:live", orjson.dumps({"period": "year:2026", "as_of": "last"}))
        pipe.execute()
        event = None
        for line in lines:
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                body = orjson.loads(line.split(":", 1)[1])
                alerts += event == "alert"
                lost += body.get("lost", 0) if event == "status" else 0
                if event == "scores":
                    scores.append(body)
                    break
    assert scores == [{"period": "year:2026", "as_of": "last"}]
    assert alerts + lost == 3000 and alerts >= 256  # at least a buffer's worth of the newest arrive


def test_schemathesis_finds_no_server_error(api_server, tmp_path):
    done = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run", f"{api_server.url}/openapi.json",
                           "--checks", "not_a_server_error", "--exclude-path", "/api/live", "--max-examples", "40",
                           "--seed", "766", "--header", f"Authorization: Bearer {TOKEN}"],
                          capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "generated" in done.stdout


def test_the_monthly_export_matches_the_projection(api_server, tmp_path):
    from openpyxl import load_workbook

    report = {unit["code"]: unit for unit in stream_report(NAMESPACE, "month:2026-05")["units"]}
    client = redis.Redis.from_url(os.environ["CHISO766_REDIS_URL"])
    xlsx = tmp_path / "notice.xlsx"
    chiso766("export", "--period", "month:2026-05", "--unit", "H15", "--format", "xlsx", "--out", str(xlsx),
             "--namespace", NAMESPACE)
    book = load_workbook(xlsx)
    assert book.sheetnames == ["Xếp hạng đơn vị", "Quá hạn theo đơn vị", "Hồ sơ trễ hạn", "Tỷ lệ trực tuyến",
                               "Cán bộ", "Kế hoạch lên hạng"]

    def table(title: str) -> tuple[tuple, list[tuple], int]:
        rows = list(book[title].iter_rows(values_only=True))
        header = next(index for index, row in enumerate(rows) if row[0] in ("Nhóm so sánh", "Mã đơn vị", "Mã hồ sơ"))
        return rows[header], rows[header + 1:], header + 1

    columns, ranking, header_row = table("Xếp hạng đơn vị")
    assert columns[:5] == ("Nhóm so sánh", "Hạng", "Thay đổi hạng", "Mã đơn vị", "Đơn vị")
    assert columns[5] == "Công khai, minh bạch (18)" and columns[-2:] == ("Tổng điểm", "Xếp loại")
    assert {row[3]: (row[1], row[-2]) for row in ranking} == {
        code: (unit["rank"], unit["total"]) for code, unit in report.items()}
    assert {row[-1] for row in ranking} <= {"Xuất sắc", "Tốt", "Khá", "Trung bình", "Yếu"}
    assert book["Xếp hạng đơn vị"][f"L{header_row + 1}"].number_format == "0.00"
    _, overdue, _ = table("Quá hạn theo đơn vị")
    for code, _, _, overdue_at_end, late, *_ in overdue:  # as the month ended, from the month's outcomes
        assert overdue_at_end == report[code]["outcomes"].get("overdue", 0)
        assert late == report[code]["outcomes"].get("late", 0)
    _, late_rows, _ = table("Hồ sơ trễ hạn")
    assert len(late_rows) == sum(client.zcard(key) for key in client.scan_iter(f"{NAMESPACE}:late:2026-05:unit:*")) > 0
    assert all(row[4] is None or row[4][2] == "/" for row in late_rows)  # dates as dd/mm/yyyy hh:mm
    _, online_rows, online_header = table("Tỷ lệ trực tuyến")
    assert book["Tỷ lệ trực tuyến"][f"D{online_header + 1}"].number_format == "0.00%"
    for code, _, received, service, payment in online_rows:
        share = report[code]["indicators"]["ONLINE_DOSSIER_SHARE"]
        assert received == share["denominator"]
        assert service == (pytest.approx(share["numerator"] / share["denominator"]) if share["denominator"] else None)
        pay = report[code]["indicators"]["PAY_DOSSIER_ONLINE"]
        assert payment == (pytest.approx(pay["numerator"] / pay["denominator"]) if pay["denominator"] else None)
    as_csv = tmp_path / "notice.csv"
    chiso766("export", "--period", "month:2026-05", "--unit", "H15", "--format", "csv", "--out", str(as_csv),
             "--namespace", NAMESPACE)
    rows = list(csv.reader(as_csv.open(encoding="utf-8-sig")))
    assert rows[0][0].startswith("THÔNG BÁO KẾT QUẢ") and len([r for r in rows if r and r[0].startswith("# ")]) == 6
    failed = chiso766("export", "--period", "month:2026-05", "--unit", "NOPE", "--out", str(tmp_path / "x.xlsx"),
                      "--namespace", NAMESPACE, check=False)
    assert failed.returncode != 0 and "NOPE" in failed.stderr


def test_alert_subscribers_ack_what_they_print_and_resume_after_a_restart(api_server):
    client = redis.Redis.from_url(os.environ["CHISO766_REDIS_URL"])
    total = client.xlen(f"{NAMESPACE}:alerts")
    assert total > 0

    def run(*extra: str) -> list[dict]:
        done = chiso766("alerts", "--consumer-group", "office-h15", "--json", "--namespace", NAMESPACE, *extra)
        return [orjson.loads(line) for line in done.stdout.splitlines() if line]

    first = run("--from-start")
    assert len(first) == total
    assert run() == []  # acked: nothing is printed twice
    filtered = chiso766("alerts", "--consumer-group", "h1501-overdue", "--json", "--from-start", "--unit", "H15.01",
                        "--kind", "overdue", "--namespace", NAMESPACE).stdout.splitlines()
    assert filtered and all(orjson.loads(line)["unit"] == "H15.01" and orjson.loads(line)["kind"] == "overdue"
                            for line in filtered)
    # A subscriber that crashed after reading but before acking gets those alerts again on restart.
    client.xadd(f"{NAMESPACE}:alerts", {"alert": orjson.dumps({"kind": "overdue", "dossier": "X-1", "unit": "H15.01",
                                                               "due": "2026-05-01T17:00:00+07:00"}),
                                        "kind": "overdue", "unit": "H15.01"})
    client.xreadgroup("office-h15", f"{socket.gethostname()}-office-h15", {f"{NAMESPACE}:alerts": ">"})  # no ack
    assert [alert["dossier"] for alert in run()] == ["X-1"]
    assert run() == []
    # --follow waits for new alerts and prints them as they come.
    follower = subprocess.Popen([sys.executable, "-m", "cli.app", "alerts", "--consumer-group", "office-h15", "--json",
                                 "--follow", "--duration", "6", "--namespace", NAMESPACE], stdout=subprocess.PIPE,
                                text=True)
    time.sleep(2)
    client.xadd(f"{NAMESPACE}:alerts", {"alert": orjson.dumps({"kind": "approaching", "dossier": "X-2",
                                                               "unit": "H15.02", "due": "2026-05-02T17:00:00+07:00"}),
                                        "kind": "approaching", "unit": "H15.02"})
    printed, _ = follower.communicate(timeout=30)
    assert follower.returncode == 0 and [orjson.loads(line)["dossier"] for line in printed.splitlines()] == ["X-2"]


def test_the_leaderboard_command_prints_and_watches(api_server):
    done = chiso766("leaderboard", "--period", "year:2026", "--group", "agencies:H15", "--lang", "en",
                    "--namespace", NAMESPACE)
    report = sorted((u for u in stream_report(NAMESPACE, "year:2026")["units"] if u["peer_group"] == "agencies:H15"),
                    key=lambda unit: (unit["rank"], unit["code"]))
    positions = [done.stdout.index(unit["code"] + " ") for unit in report]
    assert positions == sorted(positions)
    watched = chiso766("leaderboard", "--period", "year:2026", "--group", "agencies:H15", "--watch", "--duration", "2",
                       "--namespace", NAMESPACE)
    assert report[0]["name"] in watched.stdout
