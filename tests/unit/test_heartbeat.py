"""The heartbeat reports a lost lease only for an attempt whose outcome is not on its way; the
fence gives up an attempt whose lease it could not renew in time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scoter import Scoter
from scoter.consumer.heartbeat import FENCE_MARGIN, Fence, Heartbeat
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

    Heartbeat(app.storage, inflight, 30.0, 10.0, lambda c, *_: lost.append(c)).tick()

    assert lost == ([ctx] if reported else [])


def _running(tmp_path: Path) -> tuple[Scoter, InFlight, TaskContext]:
    app = Scoter("hb", f"sqlite:///{tmp_path}/q.db")
    app.storage.enqueue([NewTask("t", "noop", QUEUE, b"[]")])
    (lease,) = app.storage.claim([QUEUE], 1, 30.0, "c")
    ctx = InlineConsumer(app, "c").context(lease)
    inflight = InFlight()
    inflight.add(ctx)
    assert ctx.begin()
    return app, inflight, ctx


def test_a_renewal_moves_the_fence(tmp_path: Path) -> None:
    app, inflight, ctx = _running(tmp_path)
    ctx.renewed_at = time.monotonic() - 25.0
    lost: list[TaskContext] = []

    Heartbeat(app.storage, inflight, 30.0, 10.0, lambda c, *_: lost.append(c)).tick()

    assert lost == [] and time.monotonic() - ctx.renewed_at < 5.0


@pytest.mark.parametrize(
    ("unrenewed", "fenced"), [(30.0 * (1 - FENCE_MARGIN) + 1, True), (20.0, False)]
)
def test_the_fence_gives_up_a_lease_not_renewed_for_nearly_its_length(
    tmp_path: Path, unrenewed: float, fenced: bool
) -> None:
    _, inflight, ctx = _running(tmp_path)
    ctx.renewed_at = time.monotonic() - unrenewed
    lost: list[tuple[TaskContext, str]] = []

    Fence(inflight, 30.0, lambda c, by, _why: lost.append((c, by))).tick()

    assert lost == ([(ctx, "fence")] if fenced else [])
