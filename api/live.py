"""`GET /api/live`: every open stream is served from ONE Redis subscription, fanned out in-process.

A stream used to hold a Redis connection of its own, so 101 open streams emptied redis-py's pool and
every endpoint answered 500. Now the hub holds one subscription (its own connection, outside the
request pool) and each stream is a small in-memory queue. Streams are bounded per client address and
in total (`ApiLimits`). A queue holds at most `live_buffer` events: past it the oldest are skipped
and the stream is told (`event: status` `{"stream": "behind", "lost": n}`: reload what you show) —
a replay publishes thousands of alerts in a second, and a reading page must not lose its stream for
it. A client that reads nothing is closed once one write has waited `live_send_timeout`. So a slow
reader costs the others nothing, and its memory is bounded.

When Redis goes away, open streams get `event: status` `{"projection": "unavailable"}` and stay open
while the hub retries; `{"projection": "available"}` follows when it is back (events published in
between are lost: a page reloads what it shows). New streams are refused with 503 meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sse_starlette.event import ServerSentEvent
from sse_starlette.sse import EventSourceResponse, SendTimeoutError
from starlette.types import Receive, Scope, Send

from api.errors import PROJECTION_UNAVAILABLE, RETRY_AFTER_SECONDS, ApiError
from api.limits import ApiLimits

log = logging.getLogger("chiso766.api")
RECONNECT_FIRST, RECONNECT_MOST = 0.25, 5.0  # seconds between attempts to subscribe again, doubling
CLIENT_RETRY_MS = 3000  # the `retry:` an EventSource waits before reconnecting by itself


def _encoded(event: str, data: str) -> bytes:
    """An event as it goes on the wire, encoded once for every stream it is sent to."""
    return ServerSentEvent(data=data, event=event).encode()


def _status(**body: object) -> bytes:
    return _encoded("status", orjson.dumps(body).decode())


@dataclass(eq=False)
class Listener:
    """One open stream: what it asked for and the events waiting to be written to it."""

    address: str
    unit: str | None
    kind: str | None
    waiting: deque = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lost: int = 0  # events skipped since the stream was last told
    closing: bool = False

    def wants_alert(self, body: dict) -> bool:
        return ((self.unit is None or body.get("unit") == self.unit)
                and (self.kind is None or body.get("kind") == self.kind))


class LiveHub:
    def __init__(self, redis_url: str, scores_channel: str, alerts_channel: str, limits: ApiLimits,
                 on_count: Callable[[int], None] = lambda _: None):
        # No retries inside redis-py: the hub's own loop retries, and says so to the streams meanwhile.
        self.client = aioredis.from_url(redis_url, socket_connect_timeout=limits.redis_timeout,
                                        health_check_interval=5, retry=Retry(NoBackoff(), 0))
        self.scores_channel, self.alerts_channel = scores_channel, alerts_channel
        self.limits = limits
        self.on_count = on_count
        self.open: set[Listener] = set()  # every stream not yet closed
        self.per_address: Counter[str] = Counter()
        self.subscribed = asyncio.Event()
        self.last_error: str | None = None
        self.lost_total = 0
        self._task: asyncio.Task | None = None

    # --- life ----------------------------------------------------------------------------------

    async def start(self, wait: float = 0.0) -> None:
        """Start following; with `wait`, give the first subscription that long to succeed."""
        self._task = asyncio.create_task(self._follow(), name="live-hub")
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.subscribed.wait(), wait)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for listener in list(self.open):
            listener.closing = True
            listener.wake.set()
        await self.client.aclose()

    def state(self) -> dict:
        return {"subscription": "connected" if self.subscribed.is_set() else "reconnecting",
                "streams": len(self.open), "limit": self.limits.live_total, "events_skipped": self.lost_total}

    # --- admission -----------------------------------------------------------------------------

    def admit(self, address: str, unit: str | None, kind: str | None) -> Listener:
        """A new stream, or an ApiError saying why not: Redis down (503), every stream taken (503),
        this address's streams taken (429)."""
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if not self.subscribed.is_set():
            raise ApiError(503, PROJECTION_UNAVAILABLE, "the live feed cannot reach Redis; retry shortly", retry)
        if len(self.open) >= self.limits.live_total:
            raise ApiError(503, "live_full", f"the server holds its {self.limits.live_total} live streams; "
                           "retry later", retry)
        if self.per_address[address] >= self.limits.live_per_client:
            raise ApiError(429, "too_many_streams", f"{self.limits.live_per_client} live streams are open from "
                           "this address already; close one first", retry)
        listener = Listener(address, unit, kind)
        self.open.add(listener)
        self.per_address[address] += 1
        self.on_count(len(self.open))
        return listener

    def release(self, listener: Listener) -> None:
        """Idempotent: the response's end calls it whatever way the stream ended."""
        if listener not in self.open:
            return
        self.open.discard(listener)
        self.per_address[listener.address] -= 1
        if self.per_address[listener.address] <= 0:
            del self.per_address[listener.address]
        self.on_count(len(self.open))

    # --- the one subscription ------------------------------------------------------------------

    async def _follow(self) -> None:
        delay = RECONNECT_FIRST
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.scores_channel, self.alerts_channel)
                if not self.subscribed.is_set():
                    self._now_available()
                delay = RECONNECT_FIRST
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is not None:
                        self._dispatch(message["channel"], message["data"])
                        await asyncio.sleep(0)  # in a burst, let the streams write between two messages
            except (RedisError, OSError) as error:
                if self.subscribed.is_set() or self.last_error is None:
                    log.warning("live feed lost Redis (%s); retrying every %.0f s at most", type(error).__name__,
                                RECONNECT_MOST)
                self._now_unavailable(type(error).__name__)
            except Exception:  # a bug must not end the feed for good while the streams look connected
                log.exception("live feed failed; subscribing again")
                self._now_unavailable("internal_error")
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(RECONNECT_MOST, delay * 2)

    def _now_available(self) -> None:
        if self.last_error is not None:
            log.warning("live feed subscribed again")
        self.last_error = None
        self.subscribed.set()
        self._broadcast(_status(projection="available"))

    def _now_unavailable(self, reason: str) -> None:
        was = self.subscribed.is_set()
        self.subscribed.clear()
        self.last_error = reason
        if was:
            self._broadcast(_status(projection="unavailable", error=PROJECTION_UNAVAILABLE,
                                    detail="the live feed lost Redis; it retries, and says when it is back"))

    def _broadcast(self, event: bytes) -> None:
        for listener in self.open:
            self._queue(listener, event)

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("live feed: a message on %s is not JSON; skipped", channel.decode(errors="replace"))
            return
        text = orjson.dumps(body).decode()
        if channel.decode() == self.scores_channel:
            event, wanted = _encoded("scores", text), None
        elif isinstance(body, dict):
            event, wanted = _encoded("alert", text), body
        else:
            return
        for listener in self.open:
            if wanted is None or listener.wants_alert(wanted):
                self._queue(listener, event)

    def _queue(self, listener: Listener, event: bytes) -> None:
        if len(listener.waiting) >= self.limits.live_buffer:  # behind: the newest events matter most
            listener.waiting.popleft()
            listener.lost += 1
            self.lost_total += 1
        listener.waiting.append(event)
        listener.wake.set()

    # --- one stream ----------------------------------------------------------------------------

    async def events(self, listener: Listener) -> AsyncIterator[bytes | dict]:
        yield {"comment": "chiso766 live", "retry": CLIENT_RETRY_MS}
        while not listener.closing:
            if not listener.waiting:
                await listener.wake.wait()
                listener.wake.clear()
                continue
            if listener.lost:
                lost, listener.lost = listener.lost, 0
                yield _status(stream="behind", lost=lost, detail="events were skipped; reload what you show")
            yield listener.waiting.popleft()

    def response(self, listener: Listener, ping_seconds: float) -> LiveResponse:
        # Pings spread over a quarter of the interval: 1,000 streams opened together do not all ping at once.
        ping = ping_seconds * (1 + random.random() / 4)
        return LiveResponse(self.events(listener), ping=ping, send_timeout=self.limits.live_send_timeout,
                            on_close=lambda: self.release(listener))


class LiveResponse(EventSourceResponse):
    """An event stream that always gives its place back, however it ends (client gone, write timed
    out, server stopping), and ends quietly when its client stopped reading."""

    def __init__(self, *args, on_close: Callable[[], None], **kwargs):
        super().__init__(*args, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.info("a live stream to %s closed: its client read nothing for %.0f s", scope.get("client"),
                     self.send_timeout or 0)
        finally:
            self.on_close()
