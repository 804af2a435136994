"""Requests the API leaves in Redis for the workers (the API never talks to Kafka).

`PREFIX:commands` is a Redis stream read with one consumer group, so each request is taken by exactly
one worker of the namespace; it acks once it has acted. Only `rebuild` exists: the worker sends the
rebuild control messages every source answers by re-sending all it knows (`chiso766 project --rebuild`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from contracts.keys import RedisKeys
from streams.config import Settings

GROUP = "workers"
log = logging.getLogger("chiso766.worker")


async def request(client: aioredis.Redis, prefix: str, command: str, **fields: str) -> str:
    """Queue a command (used by the API); returns its stream id."""
    entry = await client.xadd(RedisKeys(prefix).commands, {"command": command, **fields}, maxlen=1000, approximate=True)
    return entry.decode() if isinstance(entry, bytes) else entry


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
                        await client.hset(settings.keys.command_record(entry_id.decode()), mapping={"status": "failed",
                                                                                 "error": repr(error)[:500]})
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

    command = fields.get(b"command", b"").decode()
    if command == "rebuild":
        published = await replay.send_watermarks(settings, 0, kind="rebuild")
        await client.hset(settings.keys.command_record(entry_id.decode()), mapping={"token": published.token,
                                                                                   "status": "sent"})
        await client.expire(settings.keys.command_record(entry_id.decode()), 86400)
        log.warning("rebuild requested (%s): control messages sent, token %s", entry_id.decode(), published.token)
    else:
        log.warning("unknown command %r ignored: %s", command, orjson.dumps({k.decode(): v.decode()
                                                                            for k, v in fields.items()}))
    await client.xack(key, GROUP, entry_id)
