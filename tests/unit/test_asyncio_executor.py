"""The asyncio executor's drain: the deadline cancels a task's code, never its settling."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from scoter import Scoter
from scoter.consumer.supervisor import Consumer
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
