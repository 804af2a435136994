"""The gateway without a broker, and its command line: what a wrong start or argument answers.

No Kafka here: the gateway pointed at a closed port must still serve, answering 503 (the source
system's queue keeps the records) — the real-stack behaviour is in tests/integration/test_gateway.py."""

from __future__ import annotations

import socket

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
