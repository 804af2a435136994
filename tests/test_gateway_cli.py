"""The gateway without a broker, and its command line: what a wrong start or argument answers.

No Kafka here: the gateway pointed at a closed port must still serve, answering 503 (the source
system's queue keeps the records) — the real-stack behaviour is in tests/integration/test_gateway.py."""

from __future__ import annotations

import gzip
import logging
import socket
import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.app import app as cli
from gateway.app import GatewayConfig, create_app
from ingest.secret import DEMO_SECRET

runner = CliRunner()
USERS = {"h15-one-stop": "a-password"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_with_kafka_down_at_start_the_gateway_serves_and_answers_503():
    config = GatewayConfig(bootstrap=f"127.0.0.1:{closed_port()}", namespace="t", secret=DEMO_SECRET,
                           credentials=USERS, publish_timeout=1.0)
    with TestClient(create_app(config)) as client:
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "waiting_for_kafka"
        token = client.post("/auth", json={"username": "h15-one-stop", "password": "a-password"}).json()["session"]
        call = client.post("/integration", json={"session": token, "madonvi": "H15.01", "service": "DongBoHoSoMC",
                                                 "data": [{"MaHoSo": "H15.01-260105-0001", "TrangThaiHoSo": "1"}]})
        assert call.status_code == 503 and call.json()["error_code"] == "5"


@pytest.mark.parametrize("arguments", [
    ["gateway", "--port", "70000"], ["gateway", "--port", "-1"], ["gateway", "--port", "0"],
    ["api", "--port", "70000"], ["gateway", "--publish-timeout", "0"], ["gateway", "--publish-timeout", "-5"],
    ["gateway", "--publish-timeout", "61"],
    ["gateway", "--max-records", "0"], ["gateway", "--session-minutes", "0"], ["gateway", "--max-body-mb", "-1"],
    ["gateway", "--max-body-mb", "0"], ["gateway", "--partitions", "0"]])
def test_a_bad_argument_is_refused_before_anything_starts(arguments, monkeypatch):
    def never(*_args, **_kwargs):
        raise AssertionError("started despite a bad argument")

    monkeypatch.setattr("gateway.app.run", never)
    monkeypatch.setattr("api.app.run", never)
    result = runner.invoke(cli, [*arguments, "--demo"] if arguments[0] == "gateway" else arguments)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Invalid value" in result.output


@pytest.mark.parametrize(("credentials", "message"), [
    ('{"": "pw"}', "no empty username"), ('{"a": ""}', "no empty username or password"),
    ("{not json", "not JSON"), ("[]", "JSON object")])
def test_bad_credentials_are_one_line(credentials, message, monkeypatch):
    monkeypatch.setenv("CHISO766_GATEWAY_CREDENTIALS", credentials)
    monkeypatch.setattr("gateway.app.run", lambda *_args: pytest.fail("started with bad credentials"))
    result = runner.invoke(cli, ["gateway", "--demo"])
    assert result.exit_code == 2 and message in " ".join(result.stderr.split()) and "Traceback" not in result.output


def test_a_failed_import_leaves_the_existing_output_as_it_was(tmp_path):
    kept = tmp_path / "keep.jsonl.gz"
    kept.write_bytes(gzip.compress(b'{"earlier": "history"}\n'))
    before = kept.read_bytes()
    corrupt = tmp_path / "bad.jsonl.gz"
    corrupt.write_bytes(gzip.compress(b'{"MaHoSo": "H15.01-1"}\n' * 50)[:-20] + b"garbage-not-gzip")
    result = runner.invoke(cli, ["import", str(corrupt), "--out", str(kept), "--demo"])
    assert result.exit_code == 2 and "cannot import" in result.stderr and "Traceback" not in result.output
    assert kept.read_bytes() == before
    assert {path.name for path in tmp_path.iterdir()} == {"bad.jsonl.gz", "keep.jsonl.gz"}  # no temporary left


@pytest.mark.parametrize("output_format", ["native", "dvcqg"])
@pytest.mark.parametrize("where", ["missing-folder/s.jsonl", ".", "missing-folder/s.jsonl.gz"])
def test_simulate_into_a_place_it_cannot_write_is_one_line(tmp_path, output_format, where):
    out = tmp_path / where
    result = runner.invoke(cli, ["simulate", "--dossiers", "5", "--days", "5", "--format", output_format,
                                 "--out", str(out)])
    assert result.exit_code == 2 and "cannot write" in result.stderr and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_simulate_replaces_its_output_whole(tmp_path):
    out = tmp_path / "s.jsonl"
    out.write_bytes(b"old\n")
    assert runner.invoke(cli, ["simulate", "--dossiers", "5", "--days", "5", "--out", str(out)]).exit_code == 0
    assert out.read_bytes().startswith(b"{") and [path.name for path in tmp_path.iterdir()] == ["s.jsonl"]


def test_aiokafkas_repeated_connection_errors_are_rate_limited_in_the_gateways_log():
    from gateway.logs import RepeatLimiter

    now = [0.0]
    limiter = RepeatLimiter(window=30, clock=lambda: now[0])

    def record(name: str, msg: str, *args) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)

    passed = []
    for tick in range(400):  # 40 a second for 10 s, as the cold try saw
        now[0] = tick / 40
        line = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
        if limiter.filter(line):
            passed.append(line)
    assert len(passed) == 1
    now[0] = 31
    later = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
    assert limiter.filter(later) and "399 alike held back" in later.getMessage()
    assert limiter.filter(record("aiokafka.conn", "Another message")) and limiter.filter(
        record("chiso766.gateway", "Unable connect to node with id %s: %s", 1, "x"))  # ours are never held back
    assert all(limiter.filter(record("chiso766.gateway", "call refused")) for _ in range(5))


def test_the_gateway_process_installs_the_limiter(monkeypatch):
    import uvicorn

    from gateway import app as gateway_app

    monkeypatch.setattr(uvicorn, "run", lambda *_args, **_kwargs: None)
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    try:
        gateway_app.run(GatewayConfig(bootstrap="127.0.0.1:1", namespace="t", secret=DEMO_SECRET, credentials=USERS),
                        "127.0.0.1", 1)
        assert any(type(f).__name__ == "RepeatLimiter" for f in handler.filters)
    finally:
        root.removeHandler(handler)


def test_an_envelope_whose_data_is_an_object_is_answered_400_code_2():
    config = GatewayConfig(bootstrap=f"127.0.0.1:{closed_port()}", namespace="t", secret=DEMO_SECRET,
                           credentials=USERS)
    with TestClient(create_app(config)) as client:
        token = client.post("/auth", json={"username": "h15-one-stop", "password": "a-password"}).json()["session"]
        call = client.post("/integration", json={"session": token, "madonvi": "H15.01", "service": "DongBoHoSoMC",
                                                 "data": {"a": 1}})
        assert call.status_code == 400 and call.json()["error_code"] == "2"
        assert "not a JSON array" in call.json()["message"]


def test_the_gateway_keeps_trying_and_takes_calls_once_kafka_is_there(monkeypatch):
    """The retry loop alone (the publisher's Kafka side replaced): two failed starts, then the
    registry is published once and /health turns ok. The real broker going away and coming back is
    tests/integration/test_gateway.py's."""
    from aiokafka.errors import KafkaConnectionError

    from gateway import app as gateway_app
    from gateway.publisher import Publisher

    attempts, published = [], []

    async def start(self):
        attempts.append(1)
        if len(attempts) < 3:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")
        self.producer = object()

    async def publish(self, events, rejections, service):
        published.append((service, len(events)))

    async def stop(self):
        self.producer = None

    monkeypatch.setattr(gateway_app, "RETRY_FIRST_SECONDS", 0.01)
    monkeypatch.setattr(Publisher, "start", start)
    monkeypatch.setattr(Publisher, "publish", publish)
    monkeypatch.setattr(Publisher, "stop", stop)
    unit = (b'{"event_type":"unit.upserted","event_id":"u1","occurred_at":"2026-01-01T00:00:00+07:00",'
            b'"source":"t","unit_code":"H15.01","name":"x","level":"commune","parent_code":null}')
    config = GatewayConfig(bootstrap="127.0.0.1:1", namespace="t", secret=DEMO_SECRET, credentials=USERS,
                           registry=[unit])
    with TestClient(create_app(config)) as client:
        for _ in range(200):
            if client.get("/health").status_code == 200:
                break
            time.sleep(0.01)
        assert client.get("/health").json()["status"] == "ok"
    assert len(attempts) == 3 and published == [("registry", 1)]
