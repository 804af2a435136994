"""The gateway on the real stack: sessions, both services and the catalogue, the bare-array form,
bad records, limits, Kafka not answering (503, then the retried call lands once in effect), personal
data searched for in every topic, Redis key and value, the logs and an export, and the live
equivalence: sync calls through the gateway and the workers score as `score` does on the native side."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer

from ingest.secret import DEMO_SECRET
from support import stack
from support.dvcqg_sim import fake_personal, sync_archive
from support.endpoints import wait_for_health
from support.simulate import Simulator
from tests.integration.conftest import WorkerProcess, chiso766, settings_for

pytestmark = pytest.mark.integration
MARK = "QQPIIMARKERQQ"
USERS = {"h15-one-stop": "a-long-test-password"}
PERIODS = ("year:2026", "quarter:2026-Q1", "month:2026-02")


def marked(field: str, number: int) -> str:
    return f"{fake_personal(field, number)} {MARK}"


@pytest.fixture(scope="module")
def archive(calendar) -> list[bytes]:
    return list(sync_archive(31, 250, days=60, calendar=calendar, personal=marked))


@pytest.fixture(scope="module")
def gateway(local_stack, archive, tmp_path_factory):
    directory = tmp_path_factory.mktemp("gateway")
    registry = directory / "units.jsonl"
    registry.write_bytes(b"\n".join(line for line in archive if b'"event_type"' in line) + b"\n")
    port, namespace, log = stack.free_port(), "gw", directory / "gateway.log"
    env = {**os.environ, "CHISO766_GATEWAY_CREDENTIALS": orjson.dumps(USERS).decode(),
           "CHISO766_PSEUDONYM_SECRET": DEMO_SECRET}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "cli.app", "gateway", "--port", str(port), "--namespace",
                                    namespace, "--registry", str(registry), "--max-records", "500",
                                    "--max-body-mb", "2", "--publish-timeout", "3"],
                                   stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if not wait_for_health(url):
        raise AssertionError(log.read_text())
    yield url, namespace, log
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def session(url: str) -> str:
    answer = httpx.post(f"{url}/auth", json={"username": "h15-one-stop", "password": USERS["h15-one-stop"]},
                        headers={"dstcode": "H15"}).json()
    assert answer["error_code"] == 0
    return answer["session"]


def test_sessions(gateway):
    url, _, _ = gateway
    wrong = httpx.post(f"{url}/auth", json={"username": "h15-one-stop", "password": "guess"})
    assert wrong.status_code == 401 and wrong.json()["error_code"] == "-1"
    anonymous = httpx.post(f"{url}/integration", json={"session": "made-up", "service": "DongBoHoSoMC", "data": []})
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "-1"
    assert session(url) != session(url)


def send(url: str, token: str, line: bytes, bare: bool = False) -> httpx.Response:
    body = orjson.loads(line)
    if bare:  # the provincial gateways' form: the records alone, unit and service in the query string
        return httpx.post(f"{url}/integration", json=body["data"], timeout=60,
                          params={"session": token, "MaDinhDanhDV": body["madonvi"], "service": body["service"]})
    body["session"] = token
    return httpx.post(f"{url}/integration", json=body, timeout=60)


def test_live_equivalence_through_the_gateway_and_the_workers(gateway, archive, local_stack, calendar, tmp_path):
    url, namespace, _ = gateway
    settings = settings_for(local_stack, namespace)
    # A live worker: "as of" is the wall clock, as in a province's deployment. (Records that state no
    # time for their status — a withdrawal — are timed by their arrival, now.)
    worker = WorkerProcess(settings, tmp_path, mode="live", extra=("--tick", "1"))
    try:
        token = session(url)
        for number, line in enumerate(line for line in archive if b'"event_type"' not in line):
            answer = send(url, token, line, bare=number % 3 == 0)
            assert answer.status_code == 200 and answer.json()["error_code"] == "0", answer.text
        native = list(Simulator(31, 250, days=60, calendar=calendar, sync_facts_only=True).events())
        history = tmp_path / "native.jsonl"
        history.write_bytes(b"\n".join(native) + b"\n")
        differences: list[str] = ["not compared yet"]
        deadline = time.monotonic() + 180
        while differences and time.monotonic() < deadline:
            time.sleep(2)
            differences = []
            for period in PERIODS:
                done = chiso766("scores", "--period", period, "--namespace", namespace, check=False)
                if done.returncode != 0:
                    differences.append(f"{period}: not projected yet")
                    break
                actual = orjson.loads(done.stdout)
                expected = orjson.loads(chiso766("score", str(history), "--period", period, "--json", "--as-of",
                                                 actual["as_of"]).stdout)
                differences += [f"{period} {want['code']}" for got, want in
                                zip(actual["units"], expected["units"], strict=True) if got != want]
                differences += [f"{period} units"] if len(actual["units"]) != len(expected["units"]) else []
        assert not differences, differences[:10]
        export = tmp_path / "notice.csv"
        chiso766("export", "--period", "month:2026-02", "--unit", "H15", "--format", "csv", "--out", str(export),
                 "--namespace", namespace)
        assert MARK not in export.read_text()
    finally:
        worker.stop()
        log = tmp_path / f"{namespace}-worker.log"
        assert MARK not in log.read_text(errors="replace")


def test_bad_records_are_refused_one_by_one_and_dead_lettered_without_personal_data(gateway):
    url, _, _ = gateway
    good = {"MaHoSo": "H15.01-BAD-0001", "MaTTHC": "H15-A001", "TrangThaiHoSo": "2", "KenhThucHien": 1,
            "NgayTiepNhan": "20260301090000", "NgayHenTra": "", "ChuHoSo": MARK}
    bad = [{"MaHoSo": "NOUNIT", "TrangThaiHoSo": "2", "ChuHoSo": MARK}, {**good, "NgayTiepNhan": "hôm qua"},
           {**good, "TrangThaiHoSo": "12"}, "not a record"]
    answer = httpx.post(f"{url}/integration", json={"session": session(url), "service": "DongBoHoSoMC",
                                                    "data": [good, *bad]}).json()
    assert answer["error_code"] == "1" and answer["accepted"] == 1
    assert [r["reason"] for r in answer["rejected"]] == ["unit_unknown", "bad_value", "bad_status", "not_a_record"]
    assert all(r["detail"] for r in answer["rejected"]) and MARK not in orjson.dumps(answer).decode()


def test_limits_answer_clearly(gateway):
    url, _, _ = gateway
    token = session(url)
    many = httpx.post(f"{url}/integration", json={"session": token, "service": "DongBoHoSoMC", "data": [{}] * 501})
    assert many.status_code == 413 and many.json()["error_code"] == "4" and "at most 500" in many.json()["message"]
    big = httpx.post(f"{url}/integration", content=b'{"session":"' + b"x" * (3 * 1024 * 1024) + b'"}')
    assert big.status_code == 413 and big.json()["error_code"] == "4"
    junk = httpx.post(f"{url}/integration", content=b"{not json")
    assert junk.status_code == 400 and junk.json()["error_code"] == "2"
    unknown = httpx.post(f"{url}/integration", json={"session": token, "service": "XoaHoSo", "data": []})
    assert unknown.status_code == 400 and "unknown_service" in unknown.json()["message"]


def test_kafka_not_answering_is_503_and_the_retried_call_lands_once(gateway, local_stack):
    url, namespace, _ = gateway
    token = session(url)
    record = {"MaHoSo": "H15.02-OUTAGE-0001", "MaTTHC": "H15-A002", "TrangThaiHoSo": "2", "KenhThucHien": "1",
              "NgayTiepNhan": "20260302090000", "NgayHenTra": "20260306170000"}
    call = {"session": token, "madonvi": "H15.02", "service": "DongBoHoSoMC", "isUpdating": "False", "data": [record]}
    name = local_stack.name
    stack.kill_node(name, "kafka-1", signal.SIGSTOP)
    try:
        down = httpx.post(f"{url}/integration", json=call, timeout=60)
    finally:
        stack.kill_node(name, "kafka-1", signal.SIGCONT)
    assert down.status_code == 503 and down.json()["error_code"] == "5"
    for _ in range(60):
        retried = httpx.post(f"{url}/integration", json=call, timeout=60)
        if retried.status_code == 200:
            break
        time.sleep(1)
    assert retried.json()["error_code"] == "0"
    events = asyncio.run(read_all(local_stack.bootstrap, [f"{namespace}.dossier-events"]))
    mine = [event for event in events if event.get("dossier_code") == record["MaHoSo"]]
    # Whether or not the first call's messages got through after all, the dossier's events are the
    # same set (deterministic ids): the core's state counts them once.
    assert {event["event_type"] for event in mine} >= {"dossier.received", "dossier.portal_sync_acknowledged"}
    assert len({encode_sorted(event) for event in mine}) == len({event["event_id"] for event in mine})


def encode_sorted(event: dict) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


async def read_all(bootstrap: str, topics: list[str]) -> list[dict]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    found: list[dict] = []
    try:
        while batch := await consumer.getmany(timeout_ms=2000):
            for messages in batch.values():
                for message in messages:
                    value = orjson.loads(message.value) if message.value[:1] in b"[{" else {}
                    found += value if isinstance(value, list) else [value]
    finally:
        await consumer.stop()
    return found


def test_no_personal_data_in_any_topic_redis_or_log(gateway, local_stack):
    _, namespace, log = gateway
    names = asyncio.run(topic_names(local_stack.bootstrap))
    ours = [name for name in names if name.startswith(f"{namespace}.") or name.startswith(f"chiso766-{namespace}")]
    assert f"{namespace}.dead-letter" in ours
    raw = asyncio.run(read_raw(local_stack.bootstrap, ours))
    assert raw and MARK.encode() not in raw
    assert b"NOUNIT" in raw  # the dead letter of the bad record is there, scrubbed
    client = redis.Redis.from_url(local_stack.redis_url)
    keys = list(client.scan_iter(f"{namespace}:*"))
    assert keys
    for key in keys:
        assert MARK.encode() not in key
        kind = client.type(key)
        dump = client.dump(key) or b""
        assert MARK.encode() not in dump, (key, kind)
    assert MARK not in log.read_text(errors="replace")


async def topic_names(bootstrap: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return await consumer.topics()
    finally:
        await consumer.stop()


async def read_raw(bootstrap: str, topics: list[str]) -> bytes:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    chunks: list[bytes] = []
    try:
        while batch := await consumer.getmany(timeout_ms=2000):
            for messages in batch.values():
                chunks += [(message.key or b"") + (message.value or b"") for message in messages]
    finally:
        await consumer.stop()
    return b"\n".join(chunks)
