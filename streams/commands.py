"""Taking the requests the API leaves in Redis for the workers (the API never talks to Kafka; it
queues through `contracts.commands`).

`PREFIX:commands` is a Redis stream read with one consumer group, so each request is taken by exactly
one worker of the namespace; it acks once it has acted. Only `rebuild` exists: the worker sends the
rebuild control messages every source answers by re-sending all it knows (`chiso766 project --rebuild`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from contracts import commands
from contracts.commands import GROUP
from streams.config import Settings

log = logging.getLogger("chiso766.worker")


async def _ensure_group(client: aioredis.Redis, key: str) -> None:
    try:
        await client.xgroup_create(key, GROUP, id="0", mkstream=True)  # requests made before any worker ran count
    except ResponseError as error:  # the group exists: another worker made it first
        if "BUSYGROUP" not in str(error):
            raise


async def follow(client: aioredis.Redis, settings: Settings) -> None:
    """Never ends and never takes the worker down: a wiped Redis (the group gone) or a failed command
    is logged and the loop goes on."""
    key = settings.keys.commands
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    await _ensure_group(client, key)
    while True:
        try:
            answer = await client.xreadgroup(GROUP, consumer, {key: ">"}, count=10, block=1000)
            for _, entries in answer or ():
                for entry_id, fields in entries:
                    try:
                        await _act(client, settings, key, entry_id, fields)
                    except Exception as error:  # a Kafka hiccup must not stop the worker; record it
                        log.warning("command %s failed: %r", entry_id.decode(), error)
                        await client.hset(settings.keys.command_record(entry_id.decode()),
                                          mapping={"status": "failed", "error": repr(error)[:500]})
                        await client.xack(key, GROUP, entry_id)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                log.warning("reading API commands failed: %s", error)
                await asyncio.sleep(1)
            await _ensure_group(client, key)
        except (OSError, RedisError) as error:
            log.warning("reading API commands failed: %s; retrying", error)
            await asyncio.sleep(1)


async def _act(client: aioredis.Redis, settings: Settings, key: str, entry_id: bytes, fields: dict) -> None:
    from streams import replay  # a producer per (rare) command

    try:
        command = commands.read(fields)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        log.warning("not a command, ignored (%s): %r", error, fields)
        command = None
    if command is not None and command.command == "rebuild":
        await commands.taken(client, settings.keys, command.command, entry_id.decode())  # the next may queue
        published = await replay.send_watermarks(settings, 0, kind="rebuild")
        record = settings.keys.command_record(entry_id.decode())
        await client.hset(record, mapping={"token": published.token, "status": "sent"})
        await client.expire(record, 86400)
        log.warning("rebuild requested (%s): control messages sent, token %s", entry_id.decode(), published.token)
    await client.xack(key, GROUP, entry_id)
