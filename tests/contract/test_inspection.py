"""promote, get, counts, list, requeue_dead, purge, wait: scheduling and the operator's view."""

from __future__ import annotations

import threading
import time

import pytest

from scoter.states import State
from scoter.storage.base import Storage

from .helpers import (
    LEASE,
    QUEUE,
    SHORT,
    TRACEBACK,
    claim_one,
    crash,
    enqueue,
    in_state,
    one_of_each,
    wait_expired,
)


def _states(storage: Storage, *ids: str) -> list[State | None]:
    return [None if (i := storage.get(task_id)) is None else i.state for task_id in ids]


# -- promote ---------------------------------------------------------------------------------


def test_promote_queues_due_scheduled_tasks(storage: Storage) -> None:
    now = time.time()
    enqueue(storage, "soon", eta=now + 100)
    enqueue(storage, "later", eta=now + 200)

    assert storage.promote(now) == 0
    assert storage.promote(now + 150) == 1
    assert _states(storage, "soon", "later") == [State.QUEUED, State.SCHEDULED]
    assert storage.promote(now + 150) == 0
    assert storage.promote(now + 250) == 1
    assert storage.counts() == {(QUEUE, State.QUEUED): 2}
    assert [lease.id for lease in storage.claim([QUEUE], 10, LEASE, "c1")] == ["soon", "later"]


def test_promote_includes_an_eta_equal_to_now(storage: Storage) -> None:
    eta = time.time() + 100
    enqueue(storage, "a", eta=eta)
    info = storage.get("a")
    assert info is not None and info.eta is not None

    assert storage.promote(info.eta) == 1
    assert _states(storage, "a") == [State.QUEUED]


def test_promote_leaves_other_states_alone(storage: Storage) -> None:
    ids = one_of_each(storage)

    assert storage.promote(time.time() + 10**9) == 1
    assert _states(storage, *ids) == [
        State.QUEUED, State.QUEUED, State.RUNNING, State.DONE, State.DEAD,
    ]  # fmt: skip


def test_promoted_tasks_keep_their_priority_and_age(storage: Storage) -> None:
    now = time.time()
    enqueue(storage, "low", eta=now + 10)
    enqueue(storage, "high", eta=now + 20, priority=5)
    enqueue(storage, "queued")
    assert storage.promote(now + 30) == 2

    # Age counts from enqueue, not from promotion.
    assert [lease.id for lease in storage.claim([QUEUE], 3, LEASE, "c1")] == [
        "high", "low", "queued",
    ]  # fmt: skip


# -- get, counts, list -----------------------------------------------------------------------


def test_get_of_an_unknown_id(storage: Storage) -> None:
    assert storage.get("nope") is None
    enqueue(storage, "a")
    assert storage.get("nope") is None


def test_counts_per_queue_and_state(storage: Storage) -> None:
    assert storage.counts() == {}
    in_state(storage, "s", State.SCHEDULED)
    in_state(storage, "q1", State.QUEUED)
    in_state(storage, "q2", State.QUEUED)
    in_state(storage, "r", State.RUNNING, queue="x")
    in_state(storage, "d", State.DONE, queue="x")
    in_state(storage, "x", State.DEAD, queue="y")

    assert storage.counts() == {
        (QUEUE, State.SCHEDULED): 1,
        (QUEUE, State.QUEUED): 2,
        ("x", State.RUNNING): 1,
        ("x", State.DONE): 1,
        ("y", State.DEAD): 1,
    }


def test_list_by_state_oldest_first(storage: Storage) -> None:
    enqueue(storage, "q1", priority=1)
    enqueue(storage, "q2", priority=9)
    enqueue(storage, "o1", queue="other")
    enqueue(storage, "q3", "q4")
    enqueue(storage, "s1", eta=time.time() + 3600)

    queued = storage.list_tasks(State.QUEUED)
    assert [t.id for t in queued] == ["q1", "q2", "o1", "q3", "q4"]
    assert all(t.state is State.QUEUED for t in queued)
    assert queued[1] == storage.get("q2")
    assert [t.id for t in storage.list_tasks(State.SCHEDULED)] == ["s1"]
    assert storage.list_tasks(State.DEAD) == []


def test_list_filters_by_queue_and_limits(storage: Storage) -> None:
    enqueue(storage, *(f"d{i}" for i in range(5)))
    enqueue(storage, *(f"o{i}" for i in range(5)), queue="other")

    assert [t.id for t in storage.list_tasks(State.QUEUED, queue="other")] == [
        f"o{i}" for i in range(5)
    ]
    assert [t.id for t in storage.list_tasks(State.QUEUED, queue=QUEUE, limit=2)] == ["d0", "d1"]
    assert [t.id for t in storage.list_tasks(State.QUEUED, limit=7)] == [
        "d0", "d1", "d2", "d3", "d4", "o0", "o1",
    ]  # fmt: skip
    assert storage.list_tasks(State.QUEUED, queue="none") == []
    assert storage.list_tasks(State.QUEUED, limit=0) == []


def test_list_of_running_tasks_shows_their_leases(storage: Storage) -> None:
    enqueue(storage, "a", "b")
    leases = storage.claim([QUEUE], 2, LEASE, "c7")

    running = storage.list_tasks(State.RUNNING)
    assert [t.id for t in running] == ["a", "b"]
    assert [t.consumer for t in running] == ["c7", "c7"]
    assert [t.lease_expires for t in running] == pytest.approx([x.expires for x in leases])


def test_list_default_limit_is_100(storage: Storage) -> None:
    enqueue(storage, *(f"t{i:03}" for i in range(120)))
    assert len(storage.list_tasks(State.QUEUED)) == 100


# -- requeue_dead ----------------------------------------------------------------------------


def _dead_by_error(storage: Storage, task_id: str) -> None:
    enqueue(storage, task_id)
    lease = claim_one(storage)
    assert storage.release(lease.token, "shutdown")
    lease = claim_one(storage)
    assert storage.retry(lease.token, time.time(), TRACEBACK)
    assert storage.dead(claim_one(storage).token, "error", TRACEBACK)


def _dead_by_crash(storage: Storage, task_id: str) -> None:
    enqueue(storage, task_id, max_crashes=1)
    crash(storage, claim_one(storage, lease_s=SHORT))
    info = storage.get(task_id)
    assert info is not None and info.state is State.DEAD


def test_requeue_dead_requeues_all_dead_with_budgets_reset(storage: Storage) -> None:
    _dead_by_error(storage, "err")
    _dead_by_crash(storage, "crash")
    in_state(storage, "done", State.DONE)
    in_state(storage, "queued", State.QUEUED)

    assert storage.requeue_dead() == 2

    for task_id in ("err", "crash"):
        info = storage.get(task_id)
        assert info is not None
        assert info.state is State.QUEUED
        assert (info.errors, info.interruptions, info.crashes) == (0, 0, 0)
        assert info.reason is None
    assert _states(storage, "done", "queued") == [State.DONE, State.QUEUED]
    assert storage.requeue_dead() == 0

    leases = {lease.id: lease for lease in storage.claim([QUEUE], 10, LEASE, "c1")}
    assert set(leases) == {"err", "crash", "queued"}
    assert (leases["err"].errors, leases["err"].interruptions) == (0, 0)
    assert leases["crash"].crashes == 0


def test_requeue_dead_resets_the_crash_budget(storage: Storage) -> None:
    _dead_by_crash(storage, "a")
    assert storage.requeue_dead(["a"]) == 1

    lease = claim_one(storage, lease_s=SHORT)
    assert storage.isolate(lease.token)
    wait_expired(lease)
    [rescued] = storage.rescue(time.time())
    assert (rescued.state, rescued.crashes) == (State.DEAD, 1)


def test_requeue_dead_of_some_ids(storage: Storage) -> None:
    for task_id in ("d1", "d2", "d3"):
        in_state(storage, task_id, State.DEAD)
    in_state(storage, "done", State.DONE)
    in_state(storage, "queued", State.QUEUED)

    assert storage.requeue_dead(["d1", "d3", "done", "queued", "unknown", "d1"]) == 2

    assert _states(storage, "d1", "d2", "d3", "done", "queued") == [
        State.QUEUED, State.DEAD, State.QUEUED, State.DONE, State.QUEUED,
    ]  # fmt: skip
    assert storage.requeue_dead([]) == 0
    assert storage.requeue_dead(["d2"]) == 1
    assert storage.counts() == {(QUEUE, State.QUEUED): 4, (QUEUE, State.DONE): 1}


# -- purge -----------------------------------------------------------------------------------


def test_purge_by_state(storage: Storage) -> None:
    one_of_each(storage, "-1")
    one_of_each(storage, "-2", queue="other")

    assert storage.purge(State.DEAD) == 2
    assert storage.get("dead-1") is None and storage.get("dead-2") is None
    assert storage.purge(State.DEAD) == 0
    assert storage.purge(State.DONE) == 2
    assert storage.counts() == {
        (QUEUE, State.SCHEDULED): 1, ("other", State.SCHEDULED): 1,
        (QUEUE, State.QUEUED): 1, ("other", State.QUEUED): 1,
        (QUEUE, State.RUNNING): 1, ("other", State.RUNNING): 1,
    }  # fmt: skip


def test_purge_by_ids(storage: Storage) -> None:
    for task_id in ("d1", "d2", "d3"):
        in_state(storage, task_id, State.DONE)
    in_state(storage, "dead", State.DEAD)

    assert storage.purge(State.DONE, ["d1", "d3", "dead", "unknown", "d1"]) == 2

    assert _states(storage, "d1", "d2", "d3", "dead") == [None, State.DONE, None, State.DEAD]
    assert storage.purge(State.DONE, []) == 0
    assert storage.counts() == {(QUEUE, State.DONE): 1, (QUEUE, State.DEAD): 1}


def test_purged_id_can_be_enqueued_afresh(storage: Storage) -> None:
    in_state(storage, "a", State.DEAD)
    assert storage.purge(State.DEAD, ["a"]) == 1

    assert enqueue(storage, "a") == 1
    lease = claim_one(storage)
    assert (lease.id, lease.attempt) == ("a", 1)


# -- the rest of the contract ----------------------------------------------------------------


def test_url_is_a_string(storage: Storage) -> None:
    assert isinstance(storage.url, str) and storage.url


def test_wait_returns(storage: Storage) -> None:
    start = time.monotonic()
    storage.wait([QUEUE], 0.05)
    assert time.monotonic() - start < 5

    enqueue(storage, "a")
    storage.wait([QUEUE], 0.05)
    assert claim_one(storage).id == "a"


def test_wait_and_claim_returns_nothing_from_empty_queues(storage: Storage) -> None:
    start = time.monotonic()
    assert storage.wait_and_claim([QUEUE], 2, LEASE, "c", 0.05) == []
    assert time.monotonic() - start < 5


def test_wait_and_claim_takes_tasks_enqueued_while_it_waits(storage: Storage) -> None:
    for task_id in "abc":
        enqueue(storage, task_id)
    taken = storage.wait_and_claim([QUEUE], 2, LEASE, "c", 0.05)
    assert [lease.id for lease in taken] == ["a", "b"]
    assert [lease.id for lease in storage.wait_and_claim([QUEUE], 2, LEASE, "c", 0.05)] == ["c"]

    arrives = threading.Timer(0.1, enqueue, (storage, "d"))
    arrives.start()
    [late] = storage.wait_and_claim([QUEUE], 2, LEASE, "c", 5.0)
    arrives.join()
    assert (late.id, late.attempt) == ("d", 1)
    assert storage.claim([QUEUE], 5, LEASE, "c") == []
