"""A Redis client for workers that waits out an outage instead of crashing the worker.

Every value a worker writes to Redis is absolute and computed from table state (the `rejected`
counts aside), so a call repeated after a dropped connection writes the same thing again; what a
restarted Redis lost is rewritten by a rebuild (`streams.heartbeat` asks for one when it sees a
new server). Retrying without end is then the right answer to an outage: the batch waits, its
offsets are not committed, and the worker carries on where it was once Redis answers. A stop
signal still ends the process (`streams.worker.StopWatchdog`).
"""

from __future__ import annotations

import logging
import random

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streams import metrics

log = logging.getLogger("chiso766.worker")


class OutageBackoff(AbstractBackoff):
    """Exponential backoff with jitter (0.1 s doubling up to `cap`), saying so in the log on the
    first failure of a call and every 20th after it."""

    def __init__(self, base: float = 0.1, cap: float = 5.0, what: str = "Redis"):
        self.base, self.cap, self.what = base, cap, what

    def reset(self) -> None:
        return None

    def compute(self, failures: int) -> float:
        delay = min(self.cap, self.base * 2 ** min(failures, 16)) * random.uniform(0.5, 1.0)
        metrics.REDIS_RETRIES.inc()
        if failures == 1 or failures % 20 == 0:
            log.warning("%s unreachable (try %d): retrying every %.1fs at most", self.what, failures, self.cap)
        return delay


def redis_client(url: str) -> aioredis.Redis:
    """A client whose calls (pipelines included) retry connection errors and timeouts with backoff,
    for as long as it takes. The socket timeout bounds a call to a server that hangs (stopped, not
    gone), so that it counts as a failure and is retried too; it is well above the longest call a
    worker makes (a blocking read of the command stream waits 1 s)."""
    return aioredis.from_url(url, retry=Retry(OutageBackoff(), -1, (RedisConnectionError, RedisTimeoutError)),
                             socket_connect_timeout=5, socket_timeout=30)
