"""Nothing a producer sends can stop, poison or silently thin the pipeline (issue 10, point 6): each
poison message goes to a running namespace on the real broker before a clean history, and afterwards
the projection equals `chiso766 score` of the clean history and the dead letters say why."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from contracts.messages import CONTROL_HEADER
from streams.config import DOSSIER_TOPIC
from streams.topics import ensure_topics
from tests.integration.conftest import chiso766, settings_for
from tests.integration.test_pipeline import assert_same, read_topic
from tests.test_scorer import PERSONAL_VALUES, SYNC_RECORD

pytestmark = pytest.mark.integration
NAMESPACE = "poison"


def poison_messages(real_dossier: str) -> list[tuple[bytes, list[tuple[str, bytes]], str]]:
    """(value, headers, the dead-letter reason it must get)."""
    event = {"event_type": "dossier.status_changed", "event_id": "poison", "dossier_code": real_dossier,
             "occurred_at": "2026-03-02T09:00:00+07:00", "status": 4}
    received = {"event_type": "dossier.received", "event_id": "fee", "dossier_code": "POISON-FEE",
                "occurred_at": "2026-03-02T09:00:00+07:00", "unit_code": "H15.01", "procedure_code": "P",
                "channel": 1, "received_at": "2026-03-02T09:00:00+07:00", "fee_amount": 0}
    return [
        (b"[" * 15 * 1024 * 1024, [], "oversized"),  # 15 MB
        (b"[" * 100_000 + b"]" * 100_000, [], "not_json"),  # nested 100k deep
        (orjson.dumps(received).replace(b'"fee_amount":0', b'"fee_amount":' + b"9" * 40), [], "invalid_value"),
        (orjson.dumps({**event, "occurred_at": "2041-06-01T09:00:00+07:00"}), [], "future_time"),
        (orjson.dumps({**event, "occurred_at": "2099-06-01T09:00:00+07:00", "status": 9}), [], "future_time"),
        (orjson.dumps({**event, "officer_id": "A\x1fB"}), [], "unusable_code"),
        (b"this is not a control message", [(CONTROL_HEADER, b"1")], "invalid_control"),
        (b"[" + b",".join([b"{}"] * 200_000) + b"]", [], "bad_array"),
        (orjson.dumps(SYNC_RECORD), [], "missing_event_type"),  # a raw sync record, personal data and all
    ]


async def send(bootstrap: str, topic: str, messages: list[tuple[bytes, list[tuple[str, bytes]], str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=16 * 1024 * 1024 + 1024)
    await producer.start()
    try:
        for value, headers, _ in messages:
            await producer.send_and_wait(topic, value, partition=0, headers=headers)
    finally:
        await producer.stop()


def test_poison_messages_neither_stop_nor_poison_nor_thin_the_pipeline(local_stack, history_file):
    settings = settings_for(local_stack, NAMESPACE)
    asyncio.run(ensure_topics(settings))
    real = next(orjson.loads(line)["dossier_code"] for line in history_file.read_bytes().splitlines()
                if b'"dossier.received"' in line)
    messages = poison_messages(real)
    asyncio.run(send(local_stack.bootstrap, settings.topic(DOSSIER_TOPIC), messages))

    chiso766("replay", str(history_file), "--namespace", NAMESPACE, "--wait", "--timeout", "600")

    assert_same(history_file, NAMESPACE)
    letters = asyncio.run(read_topic(local_stack.bootstrap, settings.topic("dead-letter"), len(messages)))
    assert sorted(letter["reason"] for letter in letters) == sorted(reason for _, _, reason in messages)
    for letter in letters:
        assert len(orjson.dumps(letter)) < 1024 * 1024, f"a {letter['reason']} dead letter is bounded"
        assert letter["partition"] == 0 and letter["offset"] >= 0
    oversized = next(letter for letter in letters if letter["reason"] == "oversized")
    assert "raw" not in oversized and oversized["raw_bytes"] == 15 * 1024 * 1024  # not JSON: its hash only
    everything = orjson.dumps(letters).decode()
    assert not [value for value in PERSONAL_VALUES if value in everything], "no personal data in a dead letter"
    record = next(letter for letter in letters if letter["reason"] == "missing_event_type")
    assert orjson.loads(record["raw"])["MaHoSo"] == SYNC_RECORD["MaHoSo"] and "ChuHoSo" in record["raw_removed"]

    # The dead letters' retention is the setting in force at each start.
    topic = settings.topic("dead-letter")
    assert asyncio.run(topic_config(local_stack.bootstrap, topic, "retention.ms")) == str(7 * 24 * 3_600_000)
    asyncio.run(ensure_topics(dataclasses.replace(settings, dead_letter_retention_hours=6)))
    assert asyncio.run(topic_config(local_stack.bootstrap, topic, "retention.ms")) == str(6 * 3_600_000)


async def topic_config(bootstrap: str, topic: str, name: str) -> str:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})])
    finally:
        await admin.close()
    return {entry[0]: entry[1] for answer in answers for resource in answer.resources for entry in resource[4]}[name]
