"""Flows on a Redis Cluster take two steps (see scoter/storage/_redis_cluster_flows.py): the
hand-off is kept with the ack, then completed. A caller that dies between the two leaves it
kept; a rescue completes it, storing each task once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scoter.states import State
from scoter.storage import _redis_cluster_flows
from scoter.storage.base import Ack, Flow, Join
from scoter.storage.redis_cluster import RedisClusterStorage

from .conftest import BACKENDS
from .helpers import LEASE, QUEUE, TRACEBACK, claim_one, enqueue, new_task


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisClusterStorage]:
    backend = BACKENDS["cluster"]
    location = backend.locate(tmp_path)
    storage = backend.open(location)
    assert isinstance(storage, RedisClusterStorage)
    try:
        yield storage
    finally:
        storage.close()
        if backend.drop:
            backend.drop(location)


@pytest.fixture
def dies_after_the_ack(
    cluster: RedisClusterStorage, monkeypatch: pytest.MonkeyPatch
) -> pytest.MonkeyPatch:
    """The caller dies right after the ack's script: it never completes its hand-offs; a
    rescue then finds them at once (no grace)."""
    monkeypatch.setattr(cluster, "_hand_off", lambda *args: None)
    monkeypatch.setattr(_redis_cluster_flows, "HANDOFF_GRACE_S", 0.0)
    return monkeypatch


def _state(storage: RedisClusterStorage, task_id: str) -> State | None:
    info = storage.get(task_id)
    return None if info is None else info.state


def _ack(storage: RedisClusterStorage, token: str, flow: Flow) -> bool:
    [landed], _ = storage.ack_many_and_claim([Ack(token, None, None, flow)], [], 0, LEASE, "c1")
    return landed


def test_a_hand_off_left_by_a_dead_caller_is_completed_by_a_rescue(
    cluster: RedisClusterStorage, dies_after_the_ack: pytest.MonkeyPatch
) -> None:
    enqueue(cluster, "p")
    next_step = new_task("p.1", queue="elsewhere")
    callback = new_task("chord", queue="callbacks")
    flow = Flow((next_step,), Join("chord", 0, 1, b"result", callback))

    assert _ack(cluster, claim_one(cluster).token, flow)
    assert _state(cluster, "p") is State.DONE
    assert cluster.get("p.1") is None and cluster.get("chord") is None

    dies_after_the_ack.undo()
    dies_after_the_ack.setattr(_redis_cluster_flows, "HANDOFF_GRACE_S", 0.0)
    cluster.rescue(time.time())
    cluster.rescue(time.time())  # a second rescue finds nothing left

    assert _state(cluster, "p.1") is State.QUEUED
    assert _state(cluster, "chord") is State.QUEUED
    assert cluster.counts() == {
        (QUEUE, State.DONE): 1, ("elsewhere", State.QUEUED): 1, ("callbacks", State.QUEUED): 1,
    }  # fmt: skip


def test_a_chord_callback_pending_when_its_caller_failed_is_stored_once(
    cluster: RedisClusterStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last member's caller counted the chord down, then lost the cluster before storing
    the callback: a rescue stores it, and the callback's own record is never started over."""
    enqueue(cluster, "m0")
    callback = new_task("chord", queue="callbacks")
    real_enqueue = cluster.enqueue
    failures = iter([ConnectionError("lost the cluster")])

    def enqueue_once_failing(tasks: Any, **options: Any) -> int:
        for failure in failures:
            raise failure
        return real_enqueue(tasks, **options)

    monkeypatch.setattr(cluster, "enqueue", enqueue_once_failing)
    monkeypatch.setattr(_redis_cluster_flows, "HANDOFF_GRACE_S", 0.0)
    assert _ack(cluster, claim_one(cluster).token, Flow(join=Join("chord", 0, 1, b"r", callback)))
    assert cluster.get("chord") is None
    info = cluster.chord_info("chord")
    assert info is not None and info.results == {0: b"r"}

    cluster.rescue(time.time())
    lease = claim_one(cluster, queue="callbacks")
    assert lease.id == "chord" and cluster.ack(lease.token, None, None)
    cluster.rescue(time.time())

    info_after = cluster.get("chord")
    assert info_after is not None and (info_after.state, info_after.attempts) == (State.DONE, 1)


def test_an_error_handler_left_by_a_dead_caller_is_stored_by_a_rescue(
    cluster: RedisClusterStorage, dies_after_the_ack: pytest.MonkeyPatch
) -> None:
    enqueue(cluster, "p")
    lease = claim_one(cluster)
    handler = new_task("p.error", queue="handlers")

    assert cluster.dead_and_enqueue(lease.token, "error", TRACEBACK, [handler])
    assert not cluster.dead_and_enqueue(lease.token, "error", TRACEBACK, [new_task("again")])
    assert cluster.get("p.error") is None

    dies_after_the_ack.undo()
    dies_after_the_ack.setattr(_redis_cluster_flows, "HANDOFF_GRACE_S", 0.0)
    cluster.rescue(time.time())

    assert _state(cluster, "p") is State.DEAD
    assert _state(cluster, "p.error") is State.QUEUED
    assert cluster.get("again") is None


def test_a_live_callers_hand_off_is_left_to_it(
    cluster: RedisClusterStorage, dies_after_the_ack: pytest.MonkeyPatch
) -> None:
    """A rescue leaves a hand-off younger than HANDOFF_GRACE_S: its caller is completing it."""
    enqueue(cluster, "p")
    assert _ack(cluster, claim_one(cluster).token, Flow(follow=(new_task("p.1"),)))
    dies_after_the_ack.setattr(_redis_cluster_flows, "HANDOFF_GRACE_S", 60.0)

    cluster.rescue(time.time())

    assert cluster.get("p.1") is None
