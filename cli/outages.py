"""A Redis or Kafka that does not answer is one line on stderr (exit 2) from any command, never a
traceback: commands reach Redis and Kafka through several clients and layers, so the check is made
once, around the whole command line, on the exception and whatever it was raised from."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.text import Text

from cli.common import err


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(cause for cause in (current.__cause__, current.__context__) if cause is not None)


def outage(error: BaseException) -> str | None:
    """The one line saying which dependency did not answer, or None when `error` is something else.
    Only the client libraries already imported are looked at (a command that never touched Kafka
    does not import aiokafka to find out)."""
    redis_errors = sys.modules.get("redis.exceptions")
    kafka_errors = sys.modules.get("aiokafka.errors")
    for item in _chain(error):
        if redis_errors is not None and isinstance(item, redis_errors.ConnectionError | redis_errors.TimeoutError):
            return f"cannot reach Redis ({_first_line(item)}): is the stack up? `chiso766 stack status`"
        if kafka_errors is not None and isinstance(item, kafka_errors.KafkaConnectionError
                                                   | kafka_errors.KafkaTimeoutError | kafka_errors.NodeNotReadyError):
            return f"cannot reach Kafka ({_first_line(item)}): is the stack up? `chiso766 stack status`"
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


@contextmanager
def one_line_outages() -> Iterator[None]:
    # aiokafka logs each refused connection; with no handler configured Python's last-resort handler
    # would print it above the one line. A NullHandler ends that, and a worker's own logging
    # configuration (on the root logger) still receives aiokafka's records.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    try:
        yield
    except Exception as error:
        message = outage(error)
        if message is None:
            raise
        # Outside typer's own handling here, so the exit is a plain SystemExit, like `fail`'s code.
        err.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)  # one line, however narrow
        raise SystemExit(2) from None
