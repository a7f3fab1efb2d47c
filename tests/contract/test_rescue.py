"""rescue: expired leases requeued with a crash counted, or dead once crashes reach the cap.

The attempts here run alone (`isolate`), so each crash is charged; test_crash_rule.py has the
attempts that do not."""

from __future__ import annotations

import time

import pytest

from scoter.states import State
from scoter.storage.base import EXPIRED, NewTask, Storage

from .helpers import LEASE, QUEUE, SHORT, claim_one, enqueue, wait_expired


def test_rescue_with_nothing_running(storage: Storage) -> None:
    enqueue(storage, "a")
    assert storage.rescue(time.time() + 10**6) == []


def test_rescue_requeues_an_expired_lease(storage: Storage) -> None:
    enqueue(storage, "a", name="app.slow")
    lease = claim_one(storage, lease_s=SHORT, consumer="c1")
    assert storage.isolate(lease.token)
    wait_expired(lease)

    [rescued] = storage.rescue(time.time())

    assert (rescued.id, rescued.name, rescued.state, rescued.crashes, rescued.charged) == (
        "a", "app.slow", State.QUEUED, 1, True,
    )  # fmt: skip
    info = storage.get("a")
    assert info is not None
    assert info.state is State.QUEUED
    assert (info.errors, info.interruptions, info.crashes) == (0, 0, 1)
    assert info.consumer is None and info.lease_expires is None
    assert info.reason is None
    assert not info.suspect
    [entry] = info.history
    assert (entry["attempt"], entry["outcome"], entry["consumer"]) == (1, "crashed", "c1")
    assert entry["detail"] == EXPIRED

    assert storage.rescue(time.time()) == []
    again = claim_one(storage)
    assert (again.attempt, again.crashes, again.suspect) == (2, 1, False)


def test_rescue_leaves_unexpired_leases(storage: Storage) -> None:
    enqueue(storage, "short", "long")
    short = claim_one(storage, lease_s=SHORT)
    long = claim_one(storage, lease_s=LEASE)
    long_info = storage.get("long")
    wait_expired(short)

    assert [r.id for r in storage.rescue(time.time())] == ["short"]

    assert storage.get("long") == long_info
    assert storage.heartbeat([long.token], LEASE) == set()
    assert storage.ack(long.token, None, None)


def test_rescue_goes_by_the_given_now(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage, lease_s=60)

    assert storage.rescue(time.time()) == []
    assert storage.rescue(lease.expires - 1) == []
    assert [r.id for r in storage.rescue(lease.expires + 1)] == ["a"]


def test_rescue_takes_every_expired_lease(storage: Storage) -> None:
    ids = [f"t{i:02}" for i in range(20)]
    enqueue(storage, *ids)
    leases = storage.claim([QUEUE], 20, SHORT, "c1")
    assert all(storage.isolate(lease.token) for lease in leases)
    wait_expired(*leases)

    rescued = storage.rescue(time.time())

    assert sorted(r.id for r in rescued) == ids
    assert all(r.state is State.QUEUED and r.crashes == 1 and r.charged for r in rescued)
    assert storage.counts() == {(QUEUE, State.QUEUED): 20}


@pytest.mark.parametrize("max_crashes", [1, 2, 3])
def test_crashes_up_to_max_crashes_make_the_task_dead(storage: Storage, max_crashes: int) -> None:
    enqueue(storage, "a", name="app.oom", max_crashes=max_crashes)

    for crashes in range(1, max_crashes + 1):
        lease = claim_one(storage, lease_s=SHORT)
        assert lease.crashes == crashes - 1
        assert storage.isolate(lease.token)
        wait_expired(lease)
        [rescued] = storage.rescue(time.time())
        assert (rescued.id, rescued.name, rescued.crashes) == ("a", "app.oom", crashes)
        final = crashes == max_crashes
        assert rescued.state is (State.DEAD if final else State.QUEUED)
        info = storage.get("a")
        assert info is not None
        assert info.state is rescued.state
        assert info.crashes == crashes

    assert info.reason == "crashed"
    assert info.error  # a readable explanation
    assert [h["outcome"] for h in info.history] == ["crashed"] * max_crashes
    assert storage.claim([QUEUE], 10, LEASE, "c1") == []
    assert storage.counts() == {(QUEUE, State.DEAD): 1}


def test_default_max_crashes_is_three(storage: Storage) -> None:
    storage.enqueue([NewTask("a", "app.work", QUEUE, b"")])  # max_crashes left at its default
    states = []
    for _ in range(3):
        lease = claim_one(storage, lease_s=SHORT)
        assert storage.isolate(lease.token)
        wait_expired(lease)
        states += [r.state for r in storage.rescue(time.time())]

    assert states == [State.QUEUED, State.QUEUED, State.DEAD]


def test_other_outcomes_do_not_count_as_crashes(storage: Storage) -> None:
    enqueue(storage, "a", max_crashes=2)
    assert storage.release(claim_one(storage).token, "shutdown")
    assert storage.retry(claim_one(storage).token, time.time(), "E: e")
    assert storage.release(claim_one(storage).token, "shutdown")
    lease = claim_one(storage, lease_s=SHORT)
    assert storage.isolate(lease.token)
    wait_expired(lease)

    [rescued] = storage.rescue(time.time())

    assert (rescued.state, rescued.crashes) == (State.QUEUED, 1)
    info = storage.get("a")
    assert info is not None
    assert (info.errors, info.interruptions, info.crashes) == (1, 2, 1)
