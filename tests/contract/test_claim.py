"""claim: queued → running with a lease; priority then age; queues; attempts; checkpoints."""

from __future__ import annotations

import time

import pytest

from scoter.states import State
from scoter.storage.base import Storage

from .helpers import LEASE, QUEUE, SHORT, claim_one, crash, enqueue, new_task


def test_claim_on_empty_storage_returns_nothing(storage: Storage) -> None:
    assert storage.claim([QUEUE], 10, LEASE, "c1") == []


def test_claim_issues_a_lease(storage: Storage) -> None:
    storage.enqueue([new_task("a", name="app.add", payload=b"args")])

    before = time.time()
    [lease] = storage.claim([QUEUE], 10, 12.5, "consumer-1")
    after = time.time()

    assert isinstance(lease.token, str) and lease.token
    assert (lease.id, lease.name, lease.queue, lease.payload) == ("a", "app.add", QUEUE, b"args")
    assert before + 12.5 <= lease.expires <= after + 12.5
    assert lease.attempt == 1
    assert (lease.errors, lease.interruptions, lease.crashes) == (0, 0, 0)
    assert lease.checkpoint is None

    info = storage.get("a")
    assert info is not None
    assert info.state is State.RUNNING
    assert info.consumer == "consumer-1"
    assert info.lease_expires == pytest.approx(lease.expires, abs=1e-3)
    assert info.attempts == 1
    assert storage.counts() == {(QUEUE, State.RUNNING): 1}


def test_claim_orders_by_priority_then_age(storage: Storage) -> None:
    storage.enqueue([new_task("p0-old"), new_task("p5-old", priority=5)])
    storage.enqueue([new_task("p-1", priority=-1), new_task("p10", priority=10)])
    storage.enqueue([new_task("p5-new", priority=5), new_task("p0-new")])
    expected = ["p10", "p5-old", "p5-new", "p0-old", "p0-new", "p-1"]

    assert [lease.id for lease in storage.claim([QUEUE], 10, LEASE, "c1")] == expected


def test_claim_one_at_a_time_follows_the_same_order(storage: Storage) -> None:
    storage.enqueue([new_task(f"t{i}", priority=i % 3) for i in range(9)])
    expected = ["t2", "t5", "t8", "t1", "t4", "t7", "t0", "t3", "t6"]

    assert [claim_one(storage).id for _ in range(9)] == expected
    assert storage.claim([QUEUE], 1, LEASE, "c1") == []


def test_claim_takes_at_most_n(storage: Storage) -> None:
    enqueue(storage, *(f"t{i:02}" for i in range(10)))

    assert storage.claim([QUEUE], 0, LEASE, "c1") == []
    assert storage.claim([QUEUE], -1, LEASE, "c1") == []
    assert [lease.id for lease in storage.claim([QUEUE], 3, LEASE, "c1")] == ["t00", "t01", "t02"]
    assert [lease.id for lease in storage.claim([QUEUE], 4, LEASE, "c1")] == [
        "t03", "t04", "t05", "t06",
    ]  # fmt: skip
    assert [lease.id for lease in storage.claim([QUEUE], 100, LEASE, "c1")] == [
        "t07", "t08", "t09",
    ]  # fmt: skip
    assert storage.claim([QUEUE], 100, LEASE, "c1") == []
    assert storage.counts() == {(QUEUE, State.RUNNING): 10}


def test_claim_only_takes_from_the_given_queues(storage: Storage) -> None:
    storage.enqueue([
        new_task("a1", queue="a"), new_task("b1", queue="b", priority=9),
        new_task("c1", queue="c"), new_task("a2", queue="a", priority=1),
        new_task("c2", queue="c", priority=1), new_task("b2", queue="b"),
    ])  # fmt: skip

    assert storage.claim(["nope"], 10, LEASE, "w") == []
    assert storage.claim([], 10, LEASE, "w") == []
    leases = storage.claim(["a", "c"], 10, LEASE, "w")
    assert [lease.id for lease in leases] == ["a2", "c2", "a1", "c1"]
    assert {lease.id: lease.queue for lease in leases} == {
        "a1": "a", "a2": "a", "c1": "c", "c2": "c",
    }  # fmt: skip
    assert storage.counts() == {
        ("a", State.RUNNING): 2, ("c", State.RUNNING): 2, ("b", State.QUEUED): 2,
    }  # fmt: skip
    assert [lease.id for lease in storage.claim(["b", "a"], 10, LEASE, "w")] == ["b1", "b2"]


def test_claimed_task_is_not_claimed_again_while_its_lease_lives(storage: Storage) -> None:
    enqueue(storage, "a", "b")
    first = storage.claim([QUEUE], 10, LEASE, "c1")
    assert len(first) == 2

    assert storage.claim([QUEUE], 10, LEASE, "c2") == []
    assert storage.rescue(time.time()) == []
    assert storage.claim([QUEUE], 10, LEASE, "c2") == []


def test_scheduled_tasks_are_not_claimed(storage: Storage) -> None:
    enqueue(storage, "later", eta=time.time() + 3600)
    enqueue(storage, "now")

    assert [lease.id for lease in storage.claim([QUEUE], 10, LEASE, "c1")] == ["now"]
    assert storage.claim([QUEUE], 10, LEASE, "c1") == []


def test_finished_tasks_are_not_claimed(storage: Storage) -> None:
    enqueue(storage, "done", "dead")
    assert storage.ack(claim_one(storage).token, None, None)
    assert storage.dead(claim_one(storage).token, "error", "E: e")

    assert storage.claim([QUEUE], 10, LEASE, "c1") == []


def test_every_claim_has_a_new_token(storage: Storage) -> None:
    enqueue(storage, *(f"t{i}" for i in range(20)))
    tokens = [lease.token for lease in storage.claim([QUEUE], 20, LEASE, "c1")]
    enqueue(storage, "again")
    lease = claim_one(storage)
    assert storage.release(lease.token, "shutdown")
    tokens += [lease.token, claim_one(storage).token]

    assert len(set(tokens)) == len(tokens) == 22


def test_attempt_counts_every_claim(storage: Storage) -> None:
    enqueue(storage, "a")

    first = claim_one(storage)
    assert first.attempt == 1
    assert storage.release(first.token, "shutdown")

    second = claim_one(storage)
    assert (second.attempt, second.interruptions) == (2, 1)
    assert storage.retry(second.token, time.time(), "E: e")

    third = claim_one(storage, lease_s=SHORT)
    assert (third.attempt, third.interruptions, third.errors) == (3, 1, 1)
    crash(storage, third)

    fourth = claim_one(storage)
    assert (fourth.attempt, fourth.interruptions, fourth.errors, fourth.crashes) == (4, 1, 1, 1)
    info = storage.get("a")
    assert info is not None and info.attempts == 4


def test_checkpoint_is_carried_to_the_next_lease(storage: Storage) -> None:
    enqueue(storage, "a")
    first = claim_one(storage)
    assert storage.checkpoint(first.token, b"step 1")
    assert storage.checkpoint(first.token, b"step 2")
    info = storage.get("a")
    assert info is not None and info.state is State.RUNNING
    assert storage.release(first.token, "shutdown")

    second = claim_one(storage, lease_s=SHORT)
    assert second.checkpoint == b"step 2"
    assert storage.checkpoint(second.token, b"step 3")
    crash(storage, second)

    third = claim_one(storage)
    assert third.checkpoint == b"step 3"
    assert storage.checkpoint(third.token, b"step 4")
    assert storage.retry(third.token, time.time(), "E: e")

    assert claim_one(storage).checkpoint == b"step 4"


def test_checkpoint_stays_per_task(storage: Storage) -> None:
    enqueue(storage, "a", "b")
    a, b = storage.claim([QUEUE], 2, LEASE, "c1")
    assert storage.checkpoint(a.token, b"a's")
    assert storage.release(a.token, "shutdown")
    assert storage.release(b.token, "shutdown")

    again = {lease.id: lease.checkpoint for lease in storage.claim([QUEUE], 2, LEASE, "c1")}
    assert again == {"a": b"a's", "b": None}
