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
