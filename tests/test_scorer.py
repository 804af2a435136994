"""The worker's Faust-free processing: which events a partition folds and which it sends on."""

from __future__ import annotations

import itertools

from schemas import decode_message
from schemas import events as ev
from scoring.alerts import AlertPolicy
from scoring.directory import Directory
from streams.config import CATALOG_TOPIC, DOSSIER_TOPIC, PETITION_TOPIC
from streams.partitioning import partition_for
from streams.scorer import RawMessage, SourceScorer, rerouted_messages
from tests.builders import received, unit, when

PARTITIONS = 4


def code_in(partition: int, taken: set[str]) -> str:
    for number in itertools.count():
        code = f"D-{number}"
        if code not in taken and partition_for(code, PARTITIONS) == partition:
            taken.add(code)
            return code
    raise AssertionError("unreachable")


def array(*events: ev.EventBase) -> bytes:
    return b"[" + b",".join(ev.encode(event) for event in events) + b"]"


def test_a_partition_folds_its_own_dossiers_and_sends_every_other_event_to_its_topic(ruleset, calendar):
    taken: set[str] = set()
    own, other, third = code_in(0, taken), code_in(2, taken), code_in(2, taken)
    petition = ev.PetitionReceived(event_id="pk-1", occurred_at=when("2026-09-01 10:00"), source="test",
                                   petition_id="PK-1", unit_code="H15.01", about="other",
                                   received_at=when("2026-09-01 10:00"))
    catalogue = unit("H15.01", "agency")
    message = array(received(own, "2026-09-01 09:00", "2026-09-05 17:00"),
                    received(other, "2026-09-01 09:05", "2026-09-05 17:00"), petition, catalogue,
                    received(third, "2026-09-01 09:10", "2026-09-05 17:00"))
    scorer = SourceScorer("d0", PARTITIONS, ruleset, calendar, Directory(), AlertPolicy(), 900)

    result = scorer.process([RawMessage(own.encode(), message, "ns.dossier-events", 0, 7)], None)

    assert result.events == 1 and set(scorer.engine.dossiers) == {own}
    assert [(topic, key) for topic, key, _ in result.reroute] == [
        (DOSSIER_TOPIC, other), (PETITION_TOPIC, "PK-1"), (CATALOG_TOPIC, "H15.01"), (DOSSIER_TOPIC, third)]
    sent = rerouted_messages(result.reroute, PARTITIONS)
    assert [(topic, partition, key) for topic, partition, key, _ in sent] == [
        (DOSSIER_TOPIC, 2, other.encode()), (PETITION_TOPIC, partition_for("PK-1", PARTITIONS), b"PK-1"),
        (CATALOG_TOPIC, 0, b"H15.01")]
    dossier_array = decode_message(sent[0][3])
    assert [event.dossier_code for event in dossier_array] == [other, third]  # one message, in order
