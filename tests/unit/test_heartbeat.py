"""The heartbeat reports a lost lease only for an attempt whose outcome is not on its way."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoter import Scoter
from scoter.consumer.heartbeat import Heartbeat
from scoter.consumer.inflight import InFlight
from scoter.context import TaskContext
from scoter.storage.base import NewTask

from .attempts import InlineConsumer

QUEUE = "q"


@pytest.mark.parametrize(("settling", "reported"), [(False, True), (True, False)])
def test_a_spent_token_is_a_lost_lease_unless_its_ack_is_on_its_way(
    tmp_path: Path, settling: bool, reported: bool
) -> None:
    app = Scoter("hb", f"sqlite:///{tmp_path}/q.db")
    app.storage.enqueue([NewTask("t", "noop", QUEUE, b"[]")])
    (lease,) = app.storage.claim([QUEUE], 1, 30.0, "c")
    ctx = InlineConsumer(app, "c").context(lease)
    inflight = InFlight()
    inflight.add(ctx)
    assert ctx.begin()
    if settling:
        assert ctx.begin_settling()
    assert app.storage.ack(ctx.token, None, None)  # the ack landed; its worker has not heard yet
    lost: list[TaskContext] = []

    Heartbeat(app.storage, inflight, 30.0, 10.0, lost.append).tick()

    assert lost == ([ctx] if reported else [])
