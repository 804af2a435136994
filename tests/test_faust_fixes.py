"""The delivery fast path: a coroutine stepped by hand and then continued in a task behaves as if
the task had run it from the start — result, exception and cancellation alike."""

from __future__ import annotations

import asyncio

import pytest

from streams.faust_fixes import _continue

pytestmark = pytest.mark.asyncio


async def add_one(waiting: asyncio.Future, cleaned: list[str]) -> int:
    try:
        return await waiting + 1
    finally:
        cleaned.append("cleaned")


def started(waiting: asyncio.Future, cleaned: list[str]):
    coroutine = add_one(waiting, cleaned)
    yielded = coroutine.send(None)  # runs up to `await waiting`
    assert yielded is waiting

    async def rest() -> int:
        return await _continue(coroutine, yielded)

    return asyncio.ensure_future(rest())


async def test_a_continued_coroutine_returns_its_result():
    waiting, cleaned = asyncio.get_running_loop().create_future(), []
    task = started(waiting, cleaned)
    await asyncio.sleep(0)
    waiting.set_result(41)
    assert await task == 42 and cleaned == ["cleaned"]


async def test_a_continued_coroutine_raises_what_it_awaited():
    waiting, cleaned = asyncio.get_running_loop().create_future(), []
    task = started(waiting, cleaned)
    waiting.set_exception(ValueError("broken"))
    with pytest.raises(ValueError, match="broken"):
        await task
    assert cleaned == ["cleaned"]


async def test_cancelling_the_task_cancels_the_continued_coroutine():
    waiting, cleaned = asyncio.get_running_loop().create_future(), []
    task = started(waiting, cleaned)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["cleaned"] and waiting.cancelled()


async def test_the_worker_app_gets_its_fixes_through_faust_transport_registry_not_a_patch():
    import aiokafka
    from aiokafka.consumer.consumer import AIOKafkaConsumer
    from faust.transport.drivers import aiokafka as faust_aiokafka

    from streams import faust_fixes
    from streams.app import build_app
    from streams.config import Settings

    app = build_app(Settings(bootstrap="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0"))
    assert type(app.transport) is faust_fixes.Transport and app.conf.broker[0].scheme == faust_fixes.TRANSPORT
    consumer = app.consumer
    assert isinstance(consumer, faust_fixes.Consumer)
    kafka_consumer = consumer._thread._create_worker_consumer(app.transport)  # noqa: SLF001 - what Faust builds; checked in faust-streaming 0.15.3
    assert kafka_consumer._fetch_max_wait_ms == faust_fixes.FETCH_MAX_WAIT_MS  # noqa: SLF001 - the value the fix sets
    # Nothing process-wide: the libraries' own classes are untouched.
    assert aiokafka.AIOKafkaConsumer is AIOKafkaConsumer
    assert faust_aiokafka.Consumer.wait_first is not faust_fixes.Consumer.wait_first
    assert faust_aiokafka.Consumer.perform_seek is not faust_fixes.Consumer.perform_seek
    await kafka_consumer.stop()
    # The producer tracks every topic it sends to (fix for the fresh-broker stall).
    assert isinstance(app.producer, faust_fixes.Producer)
    kafka_producer = app.producer._new_producer()  # noqa: SLF001 - what Faust builds; checked in faust-streaming 0.15.3
    assert kafka_producer.client._wait_on_metadata.__qualname__.startswith("track_every_topic_sent_to")  # noqa: SLF001 - the method the fix wraps
