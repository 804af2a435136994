"""A worker's heartbeat: whether it is advancing, not only alive; and a Redis that came back empty.

`PREFIX:worker` (the latest heartbeat of any worker of the namespace) and `PREFIX:worker:ID` (each
worker's own) hold JSON, expiring after three ticks:

  {"worker", "mode", "pid", "host", "started_at", "at",
   "state": "advancing" | "idle" | "stalled", "advancing": bool,
   "last_batch_at", "batches", "messages", "behind", "in_flight_for", "positions": {"dossier-events:0": next offset, …},
   "why": "…" (stalled only)}

- advancing: a batch finished within the last `stall_seconds`;
- idle: none did, and nothing waits to be read (a live worker between events);
- stalled: a batch has waited on the broker or Redis for `stall_seconds`, or messages wait
  (`behind` > 0: end offsets past what was handled) and no batch finished for that long.

A batch's own computation cannot look stalled: it runs on the event loop, so no heartbeat is
written while it computes; a batch still in flight at a heartbeat is waiting on I/O.

The heartbeat also notices a Redis server that restarted (its `run_id` changed): whatever it kept,
writes of the last second (append-only file) or nothing at all, the projection is then rewritten
from table state by a rebuild, queued once for all the namespace's workers (`SET … GET` on
`PREFIX:redis-run` says which worker saw the new server first).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from contracts import commands
from contracts.messages import Command
from streams import metrics
from streams.config import Settings

log = logging.getLogger("chiso766.worker")
STALL_SECONDS = float(os.environ.get("CHISO766_STALL_SECONDS", "30"))


class Heartbeat:
    def __init__(self, settings: Settings, redis: aioredis.Redis,
                 highwater: Callable[[Any], int | None] = lambda tp: None,
                 stall_seconds: float = STALL_SECONDS, clock: Callable[[], float] = time.time):
        self.settings, self.redis, self.highwater = settings, redis, highwater
        self.stall_seconds, self.clock = stall_seconds, clock
        self.worker = f"{socket.gethostname()}-{os.getpid()}"
        self.started_at = clock()
        self.positions: dict[Any, int] = {}  # topic partition → offset after the last one handled
        self.in_flight: dict[str, float] = {}  # agent → when its current batch started
        self.last_batch_at: float | None = None
        self.batches = self.messages = 0
        self.run_id: str | None = None
        self._writing: asyncio.Future | None = None

    # What the agents report.

    def begin(self, agent: str) -> None:
        self.in_flight[agent] = self.clock()

    def end(self, agent: str, events: Iterable[Any]) -> None:
        """A batch of Faust events (anything with `.message.tp` and `.message.offset`) is handled."""
        self.in_flight.pop(agent, None)
        count = 0
        for event in events:
            message = event.message
            count += 1
            if message.offset + 1 > self.positions.get(message.tp, -1):
                self.positions[message.tp] = message.offset + 1
        self.last_batch_at = self.clock()
        self.batches += 1
        self.messages += count

    @contextmanager
    def batch(self, agent: str, events: list[Any]) -> Iterator[None]:
        self.begin(agent)
        yield
        self.end(agent, events)

    # What it says.

    def behind(self) -> int:
        waiting = 0
        for tp, position in self.positions.items():
            try:
                end = self.highwater(tp)
            except Exception:  # a partition given to another worker since: not ours to judge
                end = None
            if end is not None:
                waiting += max(0, end - position)
        return waiting

    def status(self) -> dict[str, Any]:
        now = self.clock()
        behind = self.behind()
        in_flight_for = max((now - since for since in self.in_flight.values()), default=0.0)
        last = self.last_batch_at
        quiet_for = now - (last if last is not None else self.started_at)
        why = None
        if in_flight_for >= self.stall_seconds:
            why = f"a batch has waited {in_flight_for:.0f}s on the broker or Redis"
        elif behind and quiet_for >= self.stall_seconds:
            why = f"{behind} messages waiting, no batch handled for {quiet_for:.0f}s"
        if why:
            state = "stalled"
        elif last is not None and now - last < self.stall_seconds:
            state = "advancing"
        else:
            state = "idle"
        status = {
            "worker": self.worker, "mode": self.settings.mode, "pid": os.getpid(), "host": socket.gethostname(),
            "started_at": round(self.started_at, 3), "at": round(now, 3), "state": state,
            "advancing": state != "stalled", "last_batch_at": round(last, 3) if last is not None else None,
            "batches": self.batches, "messages": self.messages, "behind": behind,
            "in_flight_for": round(in_flight_for, 3),
            "positions": {f"{tp.topic.removeprefix(self.settings.namespace + '.')}:{tp.partition}": offset
                          for tp, offset in sorted(self.positions.items())}}
        if why:
            status["why"] = why
        metrics.ADVANCING.set(0 if state == "stalled" else 1)
        metrics.LAST_BATCH_AGE.set(quiet_for)
        return status

    # Where it goes.

    async def beat(self) -> dict[str, Any]:
        """Judge the worker (metrics at once), and write the heartbeat in the background: a Redis that
        hangs or is gone must not stop the judging, nor the tick that calls this. One write at a
        time; a tick that finds the last one still waiting writes nothing."""
        status = self.status()
        if status["state"] == "stalled":
            log.warning("worker stalled: %s", status["why"])
        if self._writing is None or self._writing.done():
            self._writing = asyncio.ensure_future(self.write())
        return status

    async def write(self) -> None:
        """Write the status as it is once Redis answers; queue a rebuild when Redis is a new server.
        Never raises: a heartbeat that cannot be written is logged (and the worker carries on). A
        write that waited on a hung Redis may still land a little late: `at` says when it was judged."""
        keys, ttl = self.settings.keys, max(10, int(self.settings.tick_seconds * 3))
        try:
            await self.watch_for_a_new_server()
            body = orjson.dumps(self.status())
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(keys.worker, body, ex=ttl)
            pipe.set(keys.worker_beat(self.worker), body, ex=ttl)
            await pipe.execute()
        except (RedisError, OSError) as error:
            log.warning("heartbeat not written: %r", error)

    async def watch_for_a_new_server(self) -> None:
        run_id = (await self.redis.info("server")).get("run_id")
        if run_id is None or run_id == self.run_id:
            return
        first_look, self.run_id = self.run_id is None, run_id
        previous = await self.redis.set(self.settings.keys.redis_run, run_id, get=True)
        previous = previous.decode() if isinstance(previous, bytes) else previous
        if previous == run_id:  # another worker saw this server first
            return
        if first_look and previous is None:
            return  # a namespace's first worker, or a Redis emptied while none ran: `project --rebuild`
        # Joins a rebuild already waiting (several workers, an operator's request); never rate-limited:
        # an emptied Redis needs it.
        await commands.queue_once(self.redis, self.settings.keys, Command(command="rebuild"))
        log.warning("Redis restarted (run_id %s, was %s): projection rebuild queued", run_id[:8],
                    (previous or "unknown")[:8])


def parse(raw: bytes | str | None) -> dict[str, Any] | None:
    """A heartbeat as read back (`PREFIX:worker`); a plain mode string from workers before JSON ones."""
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    if text.startswith("{"):
        return orjson.loads(text)
    return {"mode": text, "state": None, "advancing": None}
