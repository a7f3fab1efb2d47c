"""Fencing (DESIGN G3): a token that no longer holds its lease can write nothing."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from scoter.states import State
from scoter.storage.base import Lease, Storage

from .helpers import LEASE, QUEUE, SETTLES, SHORT, WRITES, claim_one, crash, enqueue

Write = Callable[[Storage, str], bool]
writes = pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
settles = pytest.mark.parametrize("settle", SETTLES.values(), ids=SETTLES.keys())


def _stolen(storage: Storage) -> tuple[Lease, Lease]:
    """A task whose first lease expired, was rescued and was claimed by another consumer."""
    enqueue(storage, "a")
    old = claim_one(storage, lease_s=SHORT, consumer="old")
    assert storage.checkpoint(old.token, b"old checkpoint")
    crash(storage, old)
    new = claim_one(storage, consumer="new")
    assert (new.id, new.attempt, new.crashes) == ("a", 2, 1)
    assert new.token != old.token
    assert new.checkpoint == b"old checkpoint"
    assert storage.checkpoint(new.token, b"new checkpoint")
    return old, new


@writes
def test_stale_token_is_refused_after_rescue_and_reclaim(storage: Storage, write: Write) -> None:
    old, new = _stolen(storage)
    before = storage.get("a")

    assert write(storage, old.token) is False

    info = storage.get("a")
    assert info == before
    assert info is not None
    assert info.state is State.RUNNING
    assert info.consumer == "new"
    assert info.lease_expires == pytest.approx(new.expires, abs=1e-3)
    assert (info.errors, info.interruptions, info.crashes) == (0, 0, 1)
    assert info.result is None and info.error is None and info.reason is None
    assert [h["outcome"] for h in info.history] == ["crashed"]

    # The new owner still holds its lease, and its checkpoint is the one the next attempt gets.
    assert storage.heartbeat([new.token, old.token], LEASE) == {old.token}
    assert storage.release(new.token, "shutdown")
    assert claim_one(storage).checkpoint == b"new checkpoint"


@writes
def test_stale_token_cannot_overwrite_the_new_owners_result(storage: Storage, write: Write) -> None:
    old, new = _stolen(storage)
    assert storage.ack(new.token, b"new result", None)
    before = storage.get("a")

    assert write(storage, old.token) is False

    info = storage.get("a")
    assert info == before
    assert info is not None
    assert (info.state, info.result) == (State.DONE, b"new result")
    assert [h["outcome"] for h in info.history] == ["crashed", "succeeded"]


@writes
def test_stale_token_is_refused_once_rescued(storage: Storage, write: Write) -> None:
    enqueue(storage, "a")
    old = claim_one(storage, lease_s=SHORT)
    crash(storage, old)
    before = storage.get("a")

    assert write(storage, old.token) is False

    assert storage.get("a") == before
    assert claim_one(storage).checkpoint is None


@settles
@writes
def test_a_settled_token_is_spent(storage: Storage, settle: Write, write: Write) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage)
    assert settle(storage, lease.token) is True
    before = storage.get("a")

    assert write(storage, lease.token) is False

    assert storage.get("a") == before


@writes
def test_released_token_is_refused_once_claimed_again(storage: Storage, write: Write) -> None:
    enqueue(storage, "a")
    old = claim_one(storage, consumer="old")
    assert storage.release(old.token, "shutdown")
    new = claim_one(storage, consumer="new")
    assert storage.checkpoint(new.token, b"new")
    before = storage.get("a")

    assert write(storage, old.token) is False

    assert storage.get("a") == before
    assert storage.ack(new.token, b"ok", None)


@writes
def test_token_of_a_purged_and_reenqueued_task_is_refused(storage: Storage, write: Write) -> None:
    enqueue(storage, "a")
    old = claim_one(storage)
    assert storage.purge(State.RUNNING, ["a"]) == 1
    enqueue(storage, "a")
    new = claim_one(storage)
    before = storage.get("a")

    assert write(storage, old.token) is False

    assert storage.get("a") == before
    assert storage.ack(new.token, None, None)


@writes
def test_unknown_token_is_refused(storage: Storage, write: Write) -> None:
    enqueue(storage, "a")
    claim_one(storage)
    before = storage.get("a")

    assert write(storage, "no-such-token") is False
    assert write(storage, "") is False

    assert storage.get("a") == before
    assert storage.counts() == {(QUEUE, State.RUNNING): 1}


def test_stale_retry_does_not_schedule_the_task_twice(storage: Storage) -> None:
    old, new = _stolen(storage)
    assert storage.retry(old.token, time.time() + 3600, "E: stale") is False
    assert storage.retry(new.token, time.time() + 3600, "E: new") is True

    info = storage.get("a")
    assert info is not None
    assert (info.state, info.errors, info.error) == (State.SCHEDULED, 1, "E: new")
