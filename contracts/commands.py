"""Queueing a command for the workers: one entry of the `commands` Redis stream, its body a `Command`.
The API queues; one worker of the namespace takes it (consumer group `GROUP`) and records what it did
in the command's hash (`RedisKeys.command_record`)."""

from __future__ import annotations

from typing import Any

from contracts.keys import RedisKeys
from contracts.messages import Command, decode_command, encode

GROUP = "workers"
BODY = "body"  # the stream entry's one field
KEEP = 1000  # entries kept in the stream (approximately)


async def queue(client: Any, keys: RedisKeys, command: Command) -> str:
    """Queue `command` on a redis.asyncio client; returns its stream id."""
    entry = await client.xadd(keys.commands, {BODY: encode(command)}, maxlen=KEEP, approximate=True)
    return entry.decode() if isinstance(entry, bytes) else entry


def read(fields: dict[bytes, bytes]) -> Command:
    """The command of a stream entry; msgspec.ValidationError / DecodeError when it is not one."""
    return decode_command(fields.get(BODY.encode(), b""))
