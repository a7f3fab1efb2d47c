"""enqueue: queued or scheduled by eta, live ids left alone, finished ids start over."""

from __future__ import annotations

import time

import pytest

from scoter.states import LIVE_STATES, State
from scoter.storage.base import Storage

from .helpers import (
    LEASE,
    QUEUE,
    TRACEBACK,
    claim_one,
    enqueue,
    in_state,
    new_task,
)


def test_enqueue_stores_a_queued_task(storage: Storage) -> None:
    before = time.time()
    assert storage.enqueue([new_task("a", name="app.add", payload=b"\x00{}", priority=7)]) == 1
    after = time.time()

    info = storage.get("a")
    assert info is not None
    assert (info.id, info.name, info.queue) == ("a", "app.add", QUEUE)
    assert info.state is State.QUEUED
    assert info.payload == b"\x00{}"
    assert info.priority == 7
    assert info.eta is None
    assert (info.attempts, info.errors, info.interruptions, info.crashes) == (0, 0, 0, 0)
    assert info.max_crashes == 3
    assert info.consumer is None and info.lease_expires is None
    assert info.result is None and info.error is None and info.reason is None
    assert info.history == []
    assert before <= info.created_at <= after
    assert before <= info.updated_at <= after


def test_enqueue_with_a_future_eta_schedules(storage: Storage) -> None:
    eta = time.time() + 3600
    assert enqueue(storage, "a", eta=eta) == 1

    info = storage.get("a")
    assert info is not None
    assert info.state is State.SCHEDULED
    assert info.eta == pytest.approx(eta)
    assert storage.claim([QUEUE], 10, LEASE, "c1") == []


def test_enqueue_with_a_past_eta_queues(storage: Storage) -> None:
    assert enqueue(storage, "a", eta=time.time() - 5) == 1

    info = storage.get("a")
    assert info is not None and info.state is State.QUEUED
    assert claim_one(storage).id == "a"


def test_bulk_enqueue_stores_all_in_one_call(storage: Storage) -> None:
    tasks = [new_task(f"q{i}") for i in range(40)]
    tasks += [new_task(f"o{i}", queue="other") for i in range(5)]
    tasks += [new_task(f"s{i}", eta=time.time() + 3600) for i in range(3)]

    assert storage.enqueue(tasks) == 48
    assert storage.counts() == {
        (QUEUE, State.QUEUED): 40,
        ("other", State.QUEUED): 5,
        (QUEUE, State.SCHEDULED): 3,
    }
    assert all(storage.get(t.id) is not None for t in tasks)


def test_enqueue_of_nothing_stores_nothing(storage: Storage) -> None:
    assert storage.enqueue([]) == 0
    assert storage.counts() == {}


@pytest.mark.parametrize("state", LIVE_STATES, ids=str)
def test_reenqueue_of_a_live_id_is_a_no_op(storage: Storage, state: State) -> None:
    in_state(storage, "a", state, payload=b"first", priority=1)
    before = storage.get("a")

    again = new_task("a", name="app.other", queue="other", payload=b"second", priority=9)
    assert storage.enqueue([again]) == 0

    assert storage.get("a") == before
    assert storage.counts() == {(QUEUE, state): 1}


def test_reenqueue_of_a_running_id_keeps_its_lease(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage)

    assert enqueue(storage, "a") == 0
    assert storage.claim([QUEUE], 10, LEASE, "c2") == []
    assert storage.heartbeat([lease.token], LEASE) == set()
    assert storage.ack(lease.token, b"ok", None)


@pytest.mark.parametrize("state", [State.DONE, State.DEAD], ids=str)
def test_reenqueue_of_a_finished_id_starts_over(storage: Storage, state: State) -> None:
    enqueue(storage, "a", payload=b"first", priority=1, max_crashes=5)
    lease = claim_one(storage)
    assert storage.checkpoint(lease.token, b"progress")
    if state is State.DONE:
        assert storage.ack(lease.token, b"result", None)
    else:
        assert storage.dead(lease.token, "error", TRACEBACK)

    before = time.time()
    again = new_task("a", name="app.other", queue="other", payload=b"second", priority=2)
    assert storage.enqueue([again]) == 1

    info = storage.get("a")
    assert info is not None
    assert info.state is State.QUEUED
    assert (info.name, info.queue, info.payload, info.priority) == (
        "app.other", "other", b"second", 2,
    )  # fmt: skip
    assert info.max_crashes == 3
    assert (info.attempts, info.errors, info.interruptions, info.crashes) == (0, 0, 0, 0)
    assert info.result is None and info.error is None and info.reason is None
    assert info.history == []
    assert info.created_at >= before
    assert storage.counts() == {("other", State.QUEUED): 1}

    fresh = claim_one(storage, queue="other")
    assert (fresh.attempt, fresh.errors, fresh.interruptions, fresh.crashes) == (1, 0, 0, 0)
    assert fresh.payload == b"second"
    assert fresh.checkpoint is None


def test_reenqueued_id_is_younger_than_tasks_enqueued_meanwhile(storage: Storage) -> None:
    enqueue(storage, "a")
    assert storage.ack(claim_one(storage).token, None, None)
    enqueue(storage, "b")
    enqueue(storage, "a")  # starts over: now the youngest task

    assert [t.id for t in storage.list_tasks(State.QUEUED)] == ["b", "a"]
    assert [lease.id for lease in storage.claim([QUEUE], 2, LEASE, "c1")] == ["b", "a"]


def test_bulk_reenqueue_keeps_the_batch_order(storage: Storage) -> None:
    enqueue(storage, "a", "b")
    for lease in storage.claim([QUEUE], 2, LEASE, "c1"):
        assert storage.dead(lease.token, "error", None)
    enqueue(storage, "c")
    assert enqueue(storage, "b", "d", "a") == 3

    assert [t.id for t in storage.list_tasks(State.QUEUED)] == ["c", "b", "d", "a"]
    assert [lease.id for lease in storage.claim([QUEUE], 4, LEASE, "c1")] == ["c", "b", "d", "a"]


def test_reenqueue_can_schedule_a_finished_id(storage: Storage) -> None:
    in_state(storage, "a", State.DONE)
    assert enqueue(storage, "a", eta=time.time() + 3600) == 1

    info = storage.get("a")
    assert info is not None and info.state is State.SCHEDULED


def test_bulk_enqueue_counts_only_what_it_stored(storage: Storage) -> None:
    in_state(storage, "done", State.DONE)
    in_state(storage, "dead", State.DEAD)
    in_state(storage, "live", State.QUEUED)

    assert enqueue(storage, "live", "done", "dead", "new") == 3
    assert storage.counts() == {(QUEUE, State.QUEUED): 4}


def test_an_enqueue_that_may_not_restart_leaves_every_stored_id_as_it_is(
    storage: Storage,
) -> None:
    in_state(storage, "done", State.DONE)
    in_state(storage, "dead", State.DEAD)
    in_state(storage, "live", State.QUEUED)
    tasks = [new_task(i, payload=b"retry") for i in ("live", "done", "dead", "new")]

    assert storage.enqueue(tasks, restart_finished=False) == 1

    states = {i: info.state for i in ("live", "done", "dead", "new") if (info := storage.get(i))}
    assert states == {
        "live": State.QUEUED, "done": State.DONE, "dead": State.DEAD, "new": State.QUEUED,
    }  # fmt: skip
    new = storage.get("new")
    assert new is not None and new.payload == b"retry"


def test_duplicate_ids_in_one_batch_store_the_first(storage: Storage) -> None:
    batch = [new_task("a", payload=b"first"), new_task("a", payload=b"second")]
    assert storage.enqueue(batch) == 1

    info = storage.get("a")
    assert info is not None and info.payload == b"first"
    assert storage.counts() == {(QUEUE, State.QUEUED): 1}


def test_enqueue_stores_max_crashes(storage: Storage) -> None:
    enqueue(storage, "a", max_crashes=7)
    info = storage.get("a")
    assert info is not None and info.max_crashes == 7


def test_bulk_enqueue_of_thousands_keeps_priority_then_batch_order(storage: Storage) -> None:
    later = time.time() + 3600
    batch = [
        new_task(f"t{i:04d}", queue=("other" if i % 5 == 0 else QUEUE), priority=i % 3,
                 eta=(later if i % 7 == 0 else None))
        for i in range(2500)
    ]  # fmt: skip
    assert storage.enqueue(batch) == 2500

    queued = [t for t in batch if t.eta is None]
    for queue in (QUEUE, "other"):
        mine = [t for t in queued if t.queue == queue]
        expected = [t.id for t in sorted(mine, key=lambda t: -t.priority)]  # stable: batch order
        claimed = [lease.id for lease in storage.claim([queue], 3000, LEASE, "c1")]
        assert claimed == expected
    counts = storage.counts()
    assert counts[(QUEUE, State.SCHEDULED)] + counts[("other", State.SCHEDULED)] == 2500 - len(
        queued
    )


def test_one_by_one_after_a_bulk_enqueue_keeps_the_order(storage: Storage) -> None:
    bulk = [f"b{i:03d}" for i in range(300)]
    enqueue(storage, *bulk)
    singles = [f"s{i}" for i in range(20)]
    for task_id in singles:  # a bulk call numbers tasks ahead of the clock: these come after
        assert enqueue(storage, task_id) == 1

    claimed = [lease.id for lease in storage.claim([QUEUE], 400, LEASE, "c1")]
    assert claimed == bulk + singles
