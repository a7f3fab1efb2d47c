"""The async client side: enqueue from a coroutine and await results without blocking the loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from scoter import ResultTimeout, Scoter, TaskFailed


def make_app(tmp_path: Path) -> Scoter:
    return Scoter("async", f"sqlite:///{tmp_path / 'async.db'}")


def test_aenqueue_and_aget_with_a_consumer(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    consumer = app.consumer(workers=2, lease=5)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    try:

        async def main() -> int | None:
            result = await add.aenqueue(2, 3)
            return await result.aget(timeout=10)

        assert asyncio.run(main()) == 5
    finally:
        consumer.stop()
        thread.join()


def test_aget_times_out_and_raises_for_dead_tasks(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.task
    def boom() -> None:
        raise ValueError("no")

    pending = boom()
    with pytest.raises(ResultTimeout):
        asyncio.run(pending.aget(timeout=0.05))
    app.run_pending()
    with pytest.raises(TaskFailed, match="ValueError: no"):
        asyncio.run(pending.aget(timeout=1))


def test_the_loop_keeps_running_while_aget_waits(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.task
    def never() -> None: ...

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        with pytest.raises(ResultTimeout):
            await (await app.aenqueue(never)).aget(timeout=0.3)
        ticking.cancel()
        return ticks

    assert asyncio.run(main()) >= 10
