"""The gateway's log stays readable while Kafka is away.

A call that timed out leaves its batch in aiokafka's producer, which retries it every retry backoff
(100 ms) and logs each failed connection: ~40 lines a second until Kafka returns. Those batches are
not dropped — they land when Kafka is back, and deterministic event ids make that harmless next to
the source system's resend — but their log lines are rate-limited here: each distinct aiokafka
message (logger, level, text before its arguments) passes once per window, and the next one to pass
says how many alike were held back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

WINDOW_SECONDS = 30.0


class RepeatLimiter(logging.Filter):
    def __init__(self, prefix: str = "aiokafka", window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.prefix, self.window, self.clock = prefix, window, clock
        self.last: dict[tuple[str, int, str], tuple[float, int]] = {}  # key → (passed at, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefix):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        passed = self.last.get(key)
        if passed is not None and now - passed[0] < self.window:
            self.last[key] = (passed[0], passed[1] + 1)
            return False
        if passed is not None and passed[1]:
            record.msg = f"{record.msg} ({passed[1]:,} alike held back in the last {self.window:.0f} s)"
        if len(self.last) > 1000:  # messages are templates, so few; a bound all the same
            self.last.clear()
        self.last[key] = (now, 0)
        return True


def install(window: float = WINDOW_SECONDS) -> None:
    """On every handler of the root logger: a filter on a logger would miss its children's records."""
    limiter = RepeatLimiter(window=window)
    for handler in logging.getLogger().handlers:
        handler.addFilter(limiter)
