"""Locks (DESIGN §5): one holder at a time; a lock taken under a task's lease lives exactly as
long as that lease — renewed by its heartbeat, free once the attempt ends in any way or the
lease expires — and every write of a holder is fenced by its owner token."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from scoter.storage.base import Storage

from .conftest import Backend
from .coordination_helpers import race_for_lock
from .helpers import LEASE, SHORT, TRACEBACK, claim_one, enqueue, race, wait_expired

ENDINGS: dict[str, Callable[[Storage, str], object]] = {
    "ack": lambda s, token: s.ack(token, None, None),
    "retry": lambda s, token: s.retry(token, time.time(), TRACEBACK),
    "release": lambda s, token: s.release(token, "stop"),
    "dead": lambda s, token: s.dead(token, "error", TRACEBACK),
    "crash": lambda s, token: s.crash(token, "killed"),
}
"""Every way an attempt ends, by its holder's write."""


@pytest.fixture(autouse=True)
def _coordinated(storage: Storage) -> None:
    if not storage.coordination:
        pytest.skip("a Redis Cluster keeps no unique keys, locks or limits yet")


def test_one_holder_at_a_time_and_release_frees(storage: Storage) -> None:
    assert storage.acquire_lock("report", "a", ttl=30, holder="host:1")
    assert not storage.acquire_lock("report", "b", ttl=30, holder="host:2")
    assert not storage.acquire_lock("report", "a", ttl=30, holder="host:1"), "not reentrant"
    assert storage.acquire_lock("other", "b", ttl=30)
    [info] = storage.locks(["report"])
    assert (info.name, info.holder, info.task_id) == ("report", "host:1", None)
    assert info.expires is not None and time.time() + 25 < info.expires <= time.time() + 30
    assert storage.release_lock("report", "a")
    assert storage.locks(["report"]) == []
    assert storage.acquire_lock("report", "b", ttl=30)
    assert [lock.name for lock in storage.locks()] == ["other", "report"]


def test_a_ttl_runs_out_and_renewal_extends_it(storage: Storage) -> None:
    assert storage.acquire_lock("short", "a", ttl=SHORT)
    assert storage.acquire_lock("renewed", "a", ttl=SHORT)
    assert storage.renew_lock("renewed", "a", 30)
    assert not storage.renew_lock("renewed", "b", 30), "only its owner renews it"
    time.sleep(SHORT + 0.05)
    assert not storage.renew_lock("short", "a", 30), "a lapsed lock is not renewed"
    assert [lock.name for lock in storage.locks()] == ["renewed"]
    assert storage.acquire_lock("short", "b", ttl=30)


def test_a_stale_owner_frees_nothing(storage: Storage) -> None:
    assert storage.acquire_lock("job", "old", ttl=SHORT)
    time.sleep(SHORT + 0.05)
    assert storage.acquire_lock("job", "new", ttl=30)
    assert not storage.release_lock("job", "old")
    assert not storage.renew_lock("job", "old", 30)
    assert [(lock.name, lock.holder) for lock in storage.locks()] == [("job", "")]
    assert not storage.acquire_lock("job", "third", ttl=30)


def _task_lock(storage: Storage, lease_s: float = LEASE) -> tuple[str, str]:
    enqueue(storage, "holder")
    lease = claim_one(storage, lease_s=lease_s)
    assert storage.acquire_lock(
        "under-lease", "owner", ttl=None, task_id=lease.id, lease_token=lease.token,
        holder="task holder",
    )  # fmt: skip
    return lease.id, lease.token


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_lock_under_a_lease_is_free_once_the_attempt_ends(storage: Storage, ending: str) -> None:
    task_id, token = _task_lock(storage)
    [info] = storage.locks()
    assert (info.holder, info.task_id) == ("task holder", task_id)
    assert not storage.acquire_lock("under-lease", "other", ttl=30)
    ENDINGS[ending](storage, token)
    assert storage.locks() == []
    assert storage.acquire_lock("under-lease", "other", ttl=30)


def test_a_lock_under_a_lease_lives_with_its_heartbeat_and_dies_with_its_expiry(
    storage: Storage,
) -> None:
    _, token = _task_lock(storage, lease_s=0.3)
    [info] = storage.locks()
    assert info.expires is not None and info.expires <= time.time() + 0.3
    time.sleep(0.2)
    assert storage.heartbeat([token], 0.3) == set()
    time.sleep(0.2)  # past the first expiry: the heartbeat renewed the lock with the lease
    assert not storage.acquire_lock("under-lease", "other", ttl=30)
    time.sleep(0.35)  # the lease expired, not yet rescued: its lock is free
    assert storage.locks() == []
    assert storage.acquire_lock("under-lease", "other", ttl=30)


def test_a_lock_under_a_lease_that_is_gone_is_not_taken(storage: Storage) -> None:
    enqueue(storage, "t")
    lease = claim_one(storage, lease_s=SHORT)
    wait_expired(lease)
    assert not storage.acquire_lock(
        "x", "owner", ttl=None, task_id=lease.id, lease_token=lease.token
    )
    assert not storage.acquire_lock("x", "owner", ttl=None, task_id="t", lease_token="no-such")
    assert storage.locks() == []


def test_a_ttl_under_a_lease_bounds_it_too(storage: Storage) -> None:
    enqueue(storage, "t")
    lease = claim_one(storage)
    assert storage.acquire_lock("x", "owner", ttl=SHORT, task_id=lease.id, lease_token=lease.token)
    time.sleep(SHORT + 0.05)
    assert storage.acquire_lock("x", "other", ttl=30)


def test_flush_frees_whoever_holds(storage: Storage) -> None:
    for name in ("a", "b", "c"):
        assert storage.acquire_lock(name, "owner", ttl=30)
    assert storage.acquire_lock("lapsed", "owner", ttl=SHORT)
    time.sleep(SHORT + 0.05)
    assert storage.flush_locks(["a", "lapsed", "never"]) == ["a"]
    assert [lock.name for lock in storage.locks()] == ["b", "c"]
    assert not storage.release_lock("a", "owner")
    assert storage.flush_locks() == ["b", "c"]
    assert storage.locks() == []
    assert storage.acquire_lock("b", "new", ttl=30)


def test_processes_racing_for_a_lock_one_wins(
    backend: Backend, location: str, storage: Storage
) -> None:
    if not backend.shared:
        pytest.skip("this backend's locks live in one process")
    reports = race(race_for_lock, 6, backend.open, location)
    assert [error for _, error in reports if error] == []
    assert sum(won for won, _ in reports) == 1
    [info] = storage.locks()
    assert info.name == "race" and info.holder.startswith("p")


def test_a_lease_of_any_queue_holds_a_lock(storage: Storage) -> None:
    enqueue(storage, "elsewhere", queue="other")
    lease = claim_one(storage, queue="other")
    assert storage.acquire_lock("x", "o", ttl=None, task_id=lease.id, lease_token=lease.token)
    assert not storage.acquire_lock("x", "p", ttl=30)
    assert storage.ack(lease.token, None, None)
    assert storage.acquire_lock("x", "p", ttl=30)
