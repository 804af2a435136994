"""Rebuild requests against the real Redis (issue 13): 300 authorised POSTs at once queue ONE rebuild
(each answer names it), a request after a worker took it and before the interval is over is a 429
with Retry-After, and after the interval a new one is queued. The worker's side — taking the request
clears the pending mark — runs for real in test_read_side's rebuild test."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import redis

from api.app import ApiConfig, create_app
from api.limits import ApiLimits
from contracts import commands
from contracts.keys import RedisKeys

pytestmark = pytest.mark.integration
TOKEN = "s3cret-for-tests"


async def post(client: httpx.AsyncClient, count: int = 1) -> list[httpx.Response]:
    return await asyncio.gather(*(client.post("/api/admin/rebuild", headers={"Authorization": f"Bearer {TOKEN}"})
                                  for _ in range(count)))


def test_a_burst_of_rebuild_requests_queues_one_and_then_waits_its_interval(local_stack):
    namespace = f"rebuild-{uuid.uuid4().hex[:8]}"
    keys = RedisKeys(namespace)
    app = create_app(ApiConfig(redis_url=local_stack.redis_url, namespace=namespace, token=TOKEN,
                               limits=ApiLimits(rebuild_interval=1.5)))
    stream = redis.Redis.from_url(local_stack.redis_url)

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            burst = await post(client, 300)
            assert {response.status_code for response in burst} == {202}
            requests = {response.json()["request"] for response in burst}
            assert len(requests) == 1 and stream.xlen(keys.commands) == 1
            assert sum(not response.json()["joined"] for response in burst) == 1  # the one that queued it

            # Not taken yet: a request later still joins it, however long it waits.
            [later] = await post(client)
            assert later.status_code == 202
            assert later.json() == {"status": "accepted", "request": requests.pop(), "joined": True}

            # A worker takes it (its very call); a request within the interval is refused, saying when.
            await commands.taken(redis_async(local_stack.redis_url), keys, "rebuild", later.json()["request"])
            [refused] = await post(client)
            assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
            assert 1 <= int(refused.headers["retry-after"]) <= 2 and stream.xlen(keys.commands) == 1

            await asyncio.sleep(1.6)
            [again] = await post(client)
            assert again.status_code == 202 and not again.json()["joined"] and stream.xlen(keys.commands) == 2

    asyncio.run(scenario())


def test_a_taken_mark_of_another_request_is_left_alone(local_stack):
    keys = RedisKeys(f"rebuild-{uuid.uuid4().hex[:8]}")
    client = redis.Redis.from_url(local_stack.redis_url)
    client.set(keys.command_pending("rebuild"), "2-0")
    asyncio.run(commands.taken(redis_async(local_stack.redis_url), keys, "rebuild", "1-0"))
    assert client.get(keys.command_pending("rebuild")) == b"2-0"


def redis_async(url: str):
    import redis.asyncio as aioredis

    return aioredis.from_url(url)
