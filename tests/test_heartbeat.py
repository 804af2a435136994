"""The heartbeat's judgement (advancing, idle, stalled) and the stop watchdog, without a broker."""

from __future__ import annotations

import signal
import threading
from types import SimpleNamespace

from streams.config import Settings
from streams.heartbeat import Heartbeat, parse
from streams.worker import StopWatchdog


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class TP(tuple):
    topic = property(lambda self: self[0])
    partition = property(lambda self: self[1])


def events(*offsets: int, topic: str = "ns.dossier-events", partition: int = 0) -> list[SimpleNamespace]:
    return [SimpleNamespace(message=SimpleNamespace(tp=TP((topic, partition)), offset=offset)) for offset in offsets]


def heartbeat(clock: Clock, highwater: dict | None = None) -> Heartbeat:
    ends = highwater or {}
    return Heartbeat(Settings("k", "r", namespace="ns"), redis=None, highwater=lambda tp: ends.get(tuple(tp)),
                     stall_seconds=30, clock=clock)


def test_a_new_worker_with_nothing_to_read_is_idle():
    status = heartbeat(Clock()).status()
    assert status["state"] == "idle" and status["advancing"] is True and status["behind"] == 0


def test_a_batch_just_handled_is_advancing_with_its_positions():
    clock = Clock()
    beat = heartbeat(clock, {("ns.dossier-events", 0): 3})
    with beat.batch("dossiers", events(0, 1, 2)):
        clock.now += 1
    status = beat.status()
    assert status["state"] == "advancing"
    assert status["positions"] == {"dossier-events:0": 3} and status["behind"] == 0 and status["messages"] == 3


def test_a_batch_waiting_on_io_for_the_stall_time_is_stalled():
    clock = Clock()
    beat = heartbeat(clock)
    beat.begin("dossiers")
    clock.now += 29
    assert beat.status()["state"] != "stalled"
    clock.now += 2
    status = beat.status()
    assert status["state"] == "stalled" and status["advancing"] is False and "waited 31s" in status["why"]


def test_messages_waiting_with_no_batch_handled_is_stalled_and_none_waiting_is_idle():
    clock = Clock()
    ends = {("ns.dossier-events", 0): 10}
    beat = heartbeat(clock, ends)
    beat.end("dossiers", events(4))
    clock.now += 31
    status = beat.status()
    assert status["state"] == "stalled" and status["behind"] == 5
    ends[("ns.dossier-events", 0)] = 5  # nothing more to read: a quiet live worker
    assert beat.status()["state"] == "idle"


def test_a_partition_taken_away_is_not_judged():
    def highwater(tp):
        raise AssertionError("Partition is not assigned")  # what aiokafka says after a rebalance

    beat = Heartbeat(Settings("k", "r", namespace="ns"), redis=None, highwater=highwater, clock=Clock())
    beat.end("dossiers", events(4))
    assert beat.status()["behind"] == 0


def test_a_heartbeat_reads_back_as_json_or_as_an_older_plain_mode():
    assert parse(b'{"mode": "live", "state": "stalled"}')["state"] == "stalled"
    assert parse(b"replay") == {"mode": "replay", "state": None, "advancing": None}
    assert parse(None) is None


def test_the_watchdog_exits_after_the_grace_or_at_a_second_signal():
    exited: list[int] = []
    done = threading.Event()

    def exit_now(code: int) -> None:
        exited.append(code)
        done.set()

    watchdog = StopWatchdog(0.05, exit_now)
    watchdog.on_signal(signal.SIGTERM)
    assert done.wait(10) and exited == [128 + signal.SIGTERM]

    exited.clear()
    patient = StopWatchdog(3600, exit_now)
    patient.on_signal(signal.SIGINT)
    assert exited == []
    patient.on_signal(signal.SIGINT)
    assert exited == [128 + signal.SIGINT]
