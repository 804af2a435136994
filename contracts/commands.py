"""Queueing a command for the workers: one entry of the `commands` Redis stream, its body a `Command`.
The API queues; one worker of the namespace takes it (consumer group `GROUP`) and records what it did
in the command's hash (`RedisKeys.command_record`).

A rebuild rewrites every projection key from the workers' tables, so asking twice before a worker
has started is asking once: `queue_once` keeps at most one pending request per command name (a
second one joins the first), and at most one accepted per `min_interval` seconds. The worker clears
the pending mark when it takes the request (`taken`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from contracts.keys import RedisKeys
from contracts.messages import Command, decode_command, encode

GROUP = "workers"
BODY = "body"  # the stream entry's one field
KEEP = 1000  # entries kept in the stream (approximately)
PENDING_SECONDS = 86400  # a pending mark no worker took goes away after a day (like the command's record)

# KEYS: pending mark, recent mark, stream. ARGV: max stream length, body field, body, pending seconds,
# min interval in ms (0: none). Replies {outcome, id-or-ms}: `pending` (joined the request waiting),
# `rate_limited` (ms until the next may be queued) or `queued` (a new request).
QUEUE_ONCE_SCRIPT = """
local pending = redis.call('GET', KEYS[1])
if pending then return {'pending', pending} end
local wait = redis.call('PTTL', KEYS[2])
if wait > 0 then return {'rate_limited', tostring(wait)} end
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', ARGV[2], ARGV[3])
redis.call('SET', KEYS[1], id, 'EX', ARGV[4])
if tonumber(ARGV[5]) > 0 then redis.call('SET', KEYS[2], id, 'PX', ARGV[5]) end
return {'queued', id}
"""
# KEYS: pending mark. ARGV: the stream id a worker took. Clears the mark only if it is that request's.
TAKEN_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Queued:
    outcome: Literal["queued", "pending", "rate_limited"]
    request: str | None  # the stream id of the request that will run (None when rate-limited)
    retry_after: float = 0.0  # seconds, when rate-limited


async def queue(client: Any, keys: RedisKeys, command: Command) -> str:
    """Queue `command` on a redis.asyncio client; returns its stream id."""
    entry = await client.xadd(keys.commands, {BODY: encode(command)}, maxlen=KEEP, approximate=True)
    return entry.decode() if isinstance(entry, bytes) else entry


async def queue_once(client: Any, keys: RedisKeys, command: Command, min_interval: float = 0.0) -> Queued:
    """Queue `command` unless one of its name is pending (then join it) or one was queued less than
    `min_interval` seconds ago; atomic in Redis, so several API processes agree."""
    outcome, value = await client.eval(
        QUEUE_ONCE_SCRIPT, 3, keys.command_pending(command.command), keys.command_recent(command.command),
        keys.commands, KEEP, BODY, encode(command), PENDING_SECONDS, int(min_interval * 1000))
    outcome, value = _text(outcome), _text(value)
    if outcome == "rate_limited":
        return Queued("rate_limited", None, int(value) / 1000)
    return Queued(outcome, value)  # type: ignore[arg-type]


async def taken(client: Any, keys: RedisKeys, name: str, entry_id: str) -> None:
    """A worker took request `entry_id`: a new request of that name may be queued again."""
    await client.eval(TAKEN_SCRIPT, 1, keys.command_pending(name), entry_id)


def read(fields: dict[bytes, bytes]) -> Command:
    """The command of a stream entry; msgspec.ValidationError / DecodeError when it is not one."""
    return decode_command(fields.get(BODY.encode(), b""))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
