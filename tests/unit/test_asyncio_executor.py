"""The asyncio executor's drain: the deadline cancels a task's code, never its settling."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from scoter import Scoter, TaskContext
from scoter.consumer.supervisor import Consumer
from scoter.exceptions import Cancel, Interrupt
from scoter.states import State
from scoter.storage.base import Ack, Lease

SLOW_ACK_S = 0.5


def test_an_ack_on_its_way_at_the_drain_deadline_lands_and_the_consumer_exits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = Scoter("aio", f"sqlite:///{tmp_path}/q.db")
    finished = threading.Event()

    @app.task()
    async def quick() -> str:
        finished.set()
        return "ok"

    write = app.storage.ack_many_and_claim

    def slow(
        acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer: str
    ) -> tuple[list[bool], list[Lease]]:
        threading.Event().wait(SLOW_ACK_S)  # still writing when the deadline comes
        return write(acks, queues, n, lease_s, consumer)

    app.storage.ack_many_and_claim = slow  # type: ignore[method-assign]
    consumer = Consumer(app, workers=2, drain_timeout=0.1, executor="asyncio", poll=0.05)
    result = quick()
    runs = threading.Thread(target=consumer.run)
    runs.start()
    assert finished.wait(10)
    consumer.stop()  # the deadline passes while the ack is being written
    runs.join(10)

    assert not runs.is_alive()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert len(consumer.inflight) == 0
    info = app.storage.get(result.id)
    assert info is not None and info.state is State.DONE and info.interruptions == 0


def test_hooks_run_around_async_tasks_and_cancel_and_interrupt_act_as_for_plain_ones(
    tmp_path: Path,
) -> None:
    app = Scoter("aio-hooks", f"sqlite:///{tmp_path}/q.db")
    seen: list[tuple[str, ...]] = []
    app.hooks.on_startup(lambda: seen.append(("startup", threading.current_thread().name)))
    app.hooks.on_shutdown(lambda: seen.append(("shutdown", threading.current_thread().name)))

    @app.hooks.pre_execute
    def before(ctx: TaskContext) -> None:
        seen.append(("pre", ctx.task_name))
        if ctx.task_name == "vetoed":
            raise Cancel("not this one")

    @app.hooks.post_execute
    def after(ctx: TaskContext, value: Any, exc: BaseException | None) -> None:
        seen.append(("post", ctx.task_name, repr(value), type(exc).__name__))

    @app.task()
    async def double(n: int) -> int:
        return 2 * n

    @app.task()
    async def vetoed() -> None:
        seen.append(("ran", "vetoed"))

    @app.task()
    async def later() -> None:
        raise Interrupt("not yet", delay=60)

    results = [double(4), vetoed(), later()]
    consumer = Consumer(app, workers=1, drain_timeout=1, executor="asyncio", poll=0.05)
    runs = threading.Thread(target=consumer.run)
    runs.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(s[0] in ("pre", "post") for s in seen) < 5:
        time.sleep(0.02)
    consumer.stop()
    runs.join(10)

    infos = [app.storage.get(r.id) for r in results]
    assert [i.state if i else None for i in infos] == [State.DONE, State.DEAD, State.SCHEDULED]
    assert infos[1] is not None and infos[1].reason == "canceled"
    assert infos[2] is not None and infos[2].eta is not None and infos[2].eta > time.time() + 50
    assert ("startup", "scoter-asyncio") in seen and ("shutdown", "scoter-asyncio") in seen
    assert ("ran", "vetoed") not in seen
    assert ("post", "double", "8", "NoneType") in seen
    assert ("post", "later", "None", "Interrupt") in seen
