"""The flood of bench.api, in a process of its own: live streams that read everything they are sent,
and slow connections that never finish their request head (reopened when the server closes them,
as an attacker would). Commands arrive on a pipe: `open`, `report`, `stop`; each is answered with a
dict."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

SLOW_DRIP_SECONDS = 1.0


@dataclass
class StreamSeen:
    scores: int = 0
    unavailable: bool = False
    available_after: bool = False  # "available" heard after "unavailable"
    open: bool = True


@dataclass
class FloodState:
    streams: list[StreamSeen] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)
    slow_closed: int = 0
    slow_statuses: dict[str, int] = field(default_factory=dict)
    slow_held: list[float] = field(default_factory=list)
    running: bool = True

    def report(self) -> dict:
        return {"open": sum(seen.open for seen in self.streams), "failed": self.failed,
                "streams_with_scores": sum(seen.scores > 0 for seen in self.streams),
                "streams_unavailable": sum(seen.unavailable for seen in self.streams),
                "streams_available": sum(seen.available_after for seen in self.streams),
                "slow_closed": self.slow_closed, "slow_statuses": self.slow_statuses,
                "slow_held_max_s": round(max(self.slow_held, default=0.0), 2)}


async def read_stream(host: str, port: int, address: str, state: FloodState) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(address, 0))
        writer.write(b"GET /api/live HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
        state.failed[type(error).__name__] = state.failed.get(type(error).__name__, 0) + 1
        return
    status = head.split()[1].decode()
    if status != "200":
        state.failed[status] = state.failed.get(status, 0) + 1
        writer.close()
        return
    seen = StreamSeen()
    state.streams.append(seen)
    try:
        while state.running:
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"event: scores"):
                seen.scores += 1
            elif line.startswith(b"data: ") and b'"projection"' in line:
                if b'"unavailable"' in line:
                    seen.unavailable = True
                elif seen.unavailable:
                    seen.available_after = True
    except OSError:
        pass
    finally:
        seen.open = False
        writer.close()


async def slow_connection(host: str, port: int, state: FloodState) -> None:
    """A request head that never ends: one header line a second. Reopened when the server closes it."""
    while state.running:
        opened = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /api/periods HTTP/1.1\r\nHost: x\r\n")
            answer = b""
            while state.running:
                try:
                    answer = await asyncio.wait_for(reader.read(1024), SLOW_DRIP_SECONDS)
                except TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")
                    continue
                break
        except OSError:
            answer = b""
        if not state.running:
            return
        state.slow_closed += 1
        state.slow_held.append(time.monotonic() - opened)
        status = answer.split()[1].decode() if answer.startswith(b"HTTP/") else "closed"
        state.slow_statuses[status] = state.slow_statuses.get(status, 0) + 1
        with contextlib.suppress(Exception):
            writer.close()


async def flood(pipe: Connection, url: str, size: dict) -> None:
    host, port_text = url.removeprefix("http://").split(":")
    port = int(port_text)
    state = FloodState()
    tasks: list[asyncio.Task] = []
    while True:
        command = await asyncio.to_thread(pipe.recv)
        if command == "open":
            addresses = [f"127.0.0.{2 + n}" for n in range(size["addresses"])]
            for start in range(0, size["streams"], 100):  # in waves: a connect storm is not what is measured
                tasks += [asyncio.create_task(read_stream(host, port, addresses[n % len(addresses)], state))
                          for n in range(start, min(size["streams"], start + 100))]
                await asyncio.sleep(0.05)
            tasks += [asyncio.create_task(slow_connection(host, port, state)) for _ in range(size["slow"])]
            deadline = time.monotonic() + 60
            while len(state.streams) + sum(state.failed.values()) < size["streams"] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            pipe.send(state.report())
        elif command == "report":
            pipe.send(state.report())
        else:
            state.running = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pipe.send(state.report())
            return


def flood_main(pipe: Connection, url: str, size: dict) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = size["streams"] + size["slow"] + 256
    if soft < wanted:  # 1,000 streams do not fit in the 1,024 descriptors many systems start with
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    asyncio.run(flood(pipe, url, size))
