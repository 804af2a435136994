"""docker-compose.yml cannot run here (no Docker engine), so its structure is checked instead."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer.main
import yaml

from cli.app import app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_three_kraft_brokers_form_one_quorum(compose):
    brokers = {name: service for name, service in compose["services"].items() if name.startswith("kafka-")}
    assert len(brokers) == 3
    cluster_ids = {service["environment"]["CLUSTER_ID"] for service in brokers.values()}
    assert len(cluster_ids) == 1 and re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_ids.pop())
    node_ids = sorted(service["environment"]["KAFKA_NODE_ID"] for service in brokers.values())
    assert node_ids == ["1", "2", "3"]
    for name, service in brokers.items():
        environment = service["environment"]
        assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
        voters = environment["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert sorted(voter.split("@")[1].split(":")[0] for voter in voters) == sorted(brokers)
        assert environment["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert environment["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"


def test_every_image_is_pinned(compose):
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        if "build" not in service:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


def test_every_chiso766_command_exists_in_the_project(compose):
    commands = typer.main.get_command(app)
    for name, service in compose["services"].items():
        command = service.get("command")
        if not command or command[0] != "chiso766":
            continue
        assert "build" in service, f"{name} runs chiso766 but builds no image"
        subcommand = command[1]
        assert subcommand in commands.commands, f"{name}: `chiso766 {subcommand}` does not exist"
        options = {param.opts[0] for param in commands.commands[subcommand].params if param.opts}
        for word in command[2:]:
            if word.startswith("--"):
                assert word in options, f"{name}: `chiso766 {subcommand}` has no option {word}"
    assert (ROOT / "Dockerfile").exists()


def test_redis_prometheus_and_grafana_are_wired(compose):
    services = compose["services"]
    assert services["redis"]["image"].startswith("redis:")
    workers = [name for name, service in services.items()
               if service.get("command", ["", ""])[:2] == ["chiso766", "worker"]]
    assert len(workers) >= 2
    for name in workers:
        environment = services[name]["environment"]
        assert environment["CHISO766_BOOTSTRAP"].count(":9092") == 3
        assert environment["CHISO766_REDIS_URL"].startswith("redis://redis:")
    api = services["api"]
    assert api["command"][:2] == ["chiso766", "api"] and "CHISO766_BOOTSTRAP" not in api["environment"]
    assert api["environment"]["CHISO766_REDIS_URL"].startswith("redis://redis:")
    assert "CHISO766_API_TOKEN" in api["environment"]
    assert api["command"][api["command"].index("--namespace") + 1] == services[workers[0]]["command"][
        services[workers[0]]["command"].index("--namespace") + 1]  # the API reads what the workers write
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {f"{name}:9100" for name in workers} | {"api:8766"}
    for volume in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        assert (ROOT / volume.split(":")[0]).exists(), volume


def test_the_provisioned_dashboard_charts_the_worker_metrics():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/chiso766.json").read_text())
    from streams import metrics

    exported = {collector._name for collector in vars(metrics).values()  # noqa: SLF001 - the full metric name; checked in prometheus-client 0.26.0
                if hasattr(collector, "_name")}
    charted = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    for name in exported:
        assert name in charted, f"{name} is not on the dashboard"
