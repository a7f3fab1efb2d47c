"""Concurrency and rate limits, enforced by every claim (DESIGN §5): a limited task waits
queued while the claim takes the next one it may; nothing is claimed and handed back."""

from __future__ import annotations

import time

import pytest

from scoter.states import State
from scoter.storage.base import Ack, Storage
from scoter.storage.coordination import LIMITS_REFRESH_S, TaskLimit

from .conftest import Backend
from .coordination_helpers import claim_limited
from .helpers import LEASE, QUEUE, SHORT, enqueue, new_task, race, wait_expired

LIMITED = "app.limited"


def _names(leases: list[object]) -> list[str]:
    return [lease.name for lease in leases]  # type: ignore[attr-defined]


def _fill(storage: Storage, limited: int, plain: int, **fields: object) -> None:
    tasks = [new_task(f"l{i}", name=LIMITED, **fields) for i in range(limited)]  # type: ignore[arg-type]
    tasks += [new_task(f"p{i}", **fields) for i in range(plain)]  # type: ignore[arg-type]
    assert storage.enqueue(tasks) == limited + plain


@pytest.fixture(autouse=True)
def _coordinated(storage: Storage) -> None:
    if not storage.coordination:
        pytest.skip("a Redis Cluster keeps no unique keys, locks or limits yet")


def test_concurrency_leaves_the_rest_queued_and_claims_past_them(storage: Storage) -> None:
    storage.set_limits([TaskLimit(LIMITED, concurrency=2)])
    _fill(storage, 5, 3)
    leases = storage.claim([QUEUE], 10, LEASE, "c1")
    assert sorted(_names(leases)) == [LIMITED] * 2 + ["app.work"] * 3
    assert [lease.id for lease in leases] == ["l0", "l1", "p0", "p1", "p2"], "claim order kept"
    assert storage.claim([QUEUE], 10, LEASE, "c2") == []
    assert storage.ack(leases[0].token, None, None)
    [next_one] = storage.claim([QUEUE], 10, LEASE, "c2")
    assert next_one.id == "l2"
    [state] = storage.limit_states()
    assert (state.running, state.at_concurrency, state.started, state.at_rate) == (
        2,
        True,
        0,
        False,
    )
    counts = storage.counts()
    assert counts[(QUEUE, State.QUEUED)] == 2 and counts[(QUEUE, State.RUNNING)] == 5


def test_a_limited_task_does_not_block_higher_or_lower_priorities(storage: Storage) -> None:
    storage.set_limits([TaskLimit(LIMITED, concurrency=1)])
    _fill(storage, 3, 0, priority=5)
    enqueue(storage, "low", priority=-1)
    enqueue(storage, "high", priority=9)
    ids = [lease.id for lease in storage.claim([QUEUE], 3, LEASE, "c1")]
    assert ids == ["high", "l0", "low"]


def test_every_call_that_claims_keeps_the_limit(storage: Storage) -> None:
    storage.set_limits([TaskLimit(LIMITED, concurrency=1)])
    _fill(storage, 4, 0)
    first = storage.claim([QUEUE], 5, LEASE, "c1")
    acked, leases = storage.ack_many_and_claim([Ack(first[0].token, None, None)], [QUEUE], 5,
                                               LEASE, "c1")  # fmt: skip
    assert acked == [True] and _names(leases) == [LIMITED]
    assert storage.wait_and_claim([QUEUE], 5, LEASE, "c1", 0.01) == []


def test_a_rescued_holder_gives_its_slot_back(storage: Storage) -> None:
    storage.set_limits([TaskLimit(LIMITED, concurrency=1)])
    _fill(storage, 2, 0)
    [lease] = storage.claim([QUEUE], 5, SHORT, "c1")
    assert storage.claim([QUEUE], 5, LEASE, "c2") == []
    wait_expired(lease)
    assert [r.id for r in storage.rescue(time.time())] == ["l0"]
    assert [lease.id for lease in storage.claim([QUEUE], 5, LEASE, "c2")] == ["l0"]


def test_a_rate_is_a_sliding_window_of_claims(storage: Storage) -> None:
    storage.set_limits([TaskLimit(LIMITED, rate=3, per=0.5)])
    _fill(storage, 8, 1)
    began = time.time()
    leases = storage.claim([QUEUE], 10, LEASE, "c1")
    assert sorted(_names(leases)) == [LIMITED] * 3 + ["app.work"]
    for lease in leases:  # finishing does not give a start back: the window does
        assert storage.ack(lease.token, None, None)
    assert storage.claim([QUEUE], 10, LEASE, "c1") == []
    [state] = storage.limit_states([LIMITED])
    assert state.started == 3 and state.next_start is not None
    assert began + 0.4 < state.next_start < time.time() + 0.55
    time.sleep(max(0.0, state.next_start - time.time()) + 0.05)
    assert _names(storage.claim([QUEUE], 10, LEASE, "c1")) == [LIMITED] * 3


def test_both_limits_at_once(storage: Storage) -> None:
    storage.set_limits([TaskLimit(LIMITED, concurrency=1, rate=2, per=30)])
    _fill(storage, 4, 0)
    [first] = storage.claim([QUEUE], 5, LEASE, "c1")
    assert storage.claim([QUEUE], 5, LEASE, "c1") == []
    assert storage.ack(first.token, None, None)
    assert len(storage.claim([QUEUE], 5, LEASE, "c1")) == 1
    [state] = storage.limit_states()
    assert (state.running, state.started, state.at_rate) == (1, 2, True)


def test_limits_are_replaced_and_removed(storage: Storage) -> None:
    storage.set_limits([TaskLimit(LIMITED, concurrency=1), TaskLimit("app.b", rate=5, per=1)])
    storage.set_limits([TaskLimit(LIMITED, concurrency=3)])
    states = {s.limit.name: s.limit for s in storage.limit_states()}
    assert states == {LIMITED: TaskLimit(LIMITED, 3), "app.b": TaskLimit("app.b", None, 5, 1.0)}
    storage.set_limits([TaskLimit(LIMITED), TaskLimit("app.b")])
    assert storage.limit_states() == []
    _fill(storage, 4, 0)
    assert len(storage.claim([QUEUE], 5, LEASE, "c1")) == 4


def test_take_rate_is_a_sliding_window(storage: Storage) -> None:
    assert [storage.take_rate("api", 2, 0.3) for _ in range(3)] == [True, True, False]
    assert storage.take_rate("other", 1, 0.3)
    time.sleep(0.35)
    assert storage.take_rate("api", 2, 0.3)


def test_reset_rate_empties_the_window_of_its_key_only(storage: Storage) -> None:
    assert [storage.take_rate("api", 1, 60) for _ in range(2)] == [True, False]
    assert storage.take_rate("other", 1, 60)
    storage.reset_rate("api")
    storage.reset_rate("never-used")
    assert storage.take_rate("api", 1, 60) and not storage.take_rate("api", 1, 60)
    assert not storage.take_rate("other", 1, 60)


def test_a_storage_that_has_not_read_the_limits_yet_keeps_them(
    backend: Backend, location: str, storage: Storage
) -> None:
    if not backend.shared:
        pytest.skip("this backend's limits live in one process")
    other = backend.open(location)
    try:
        assert other.claim([QUEUE], 5, LEASE, "c2") == []  # it knows of no limit now
        storage.set_limits([TaskLimit(LIMITED, concurrency=1)])
        _fill(storage, 3, 2)
        claimed = _names(other.claim([QUEUE], 5, LEASE, "c2"))
        assert claimed.count(LIMITED) <= 1
        time.sleep(LIMITS_REFRESH_S + 0.05)
        claimed += _names(other.claim([QUEUE], 5, LEASE, "c2"))
        assert sorted(claimed) == [LIMITED, "app.work", "app.work"]
    finally:
        other.close()


def test_processes_claiming_together_keep_a_concurrency_limit(
    backend: Backend, location: str, storage: Storage
) -> None:
    if not backend.shared:
        pytest.skip("this backend's tasks live in one process")
    storage.set_limits([TaskLimit(LIMITED, concurrency=3)])
    _fill(storage, 30, 0)
    reports = race(claim_limited, 4, backend.open, location)
    assert [error for _, error in reports if error] == []
    assert sum(len(ids) for ids, _ in reports) == 3
    assert storage.counts()[(QUEUE, State.RUNNING)] == 3


def test_claiming_ahead_leaves_limited_tasks_queued(storage: Storage) -> None:
    _fill(storage, 2, 0, priority=1)
    storage.enqueue([new_task(f"q{i}") for i in range(3)])
    assert [lease.id for lease in storage.claim_ahead([QUEUE], 2, LEASE, "c1")] == ["l0", "l1"]
    storage.set_limits([TaskLimit(LIMITED, concurrency=5)])
    ahead = [new_task(f"late{i}", name=LIMITED, priority=2) for i in range(40)]
    storage.enqueue([*ahead, new_task("p", priority=2)])
    assert [lease.id for lease in storage.claim_ahead([QUEUE], 1, LEASE, "c1")] == ["p"]
    ids = [lease.id for lease in storage.claim_ahead([QUEUE], 10, LEASE, "c1")]
    assert ids == ["q0", "q1", "q2"]
    assert storage.claim_ahead([QUEUE], 10, LEASE, "c1") == []
    claimed = [lease.id for lease in storage.claim([QUEUE], 10, LEASE, "c1")]
    assert claimed == ["late0", "late1", "late2"], "l0 and l1 run: 3 of 5 left"
