"""Maintenance steps (rescue, promote, expire_results, requeue_dead, purge) in batches; the
history limit; the size limits' defaults.

Each step works through any number of tasks in batches of at most `maintenance_batch`, each
batch committed on its own, with a pause between them in which other calls get in: a step
over millions of tasks never holds a SQLite write lock or the Redis server for long."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from scoter.app import DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_RESULT_BYTES
from scoter.states import State
from scoter.storage.base import HISTORY_LIMIT, Storage

from .conftest import Backend
from .helpers import LEASE, QUEUE, SHORT, TRACEBACK, claim_one, enqueue, wait_expired

BATCH = 3
TASKS = 7
"""Two full batches and one short one."""
QUEUES = (QUEUE, "other")


def _ids(prefix: str) -> list[str]:
    return [f"{prefix}{i}" for i in range(TASKS)]


def _enqueue_in_both_queues(storage: Storage, ids: list[str], **fields: object) -> None:
    for i, task_id in enumerate(ids):
        assert enqueue(storage, task_id, queue=QUEUES[i % 2], **fields) == 1


def _claim_all(storage: Storage, lease_s: float = LEASE) -> list[str]:
    leases = storage.claim(list(QUEUES), 100, lease_s, "c1")
    return [lease.token for lease in leases]


def _done(storage: Storage, ids: list[str], ttl: float | None) -> None:
    _enqueue_in_both_queues(storage, ids)
    for token in _claim_all(storage):
        assert storage.ack(token, b"result", ttl)


def _dead(storage: Storage, ids: list[str]) -> None:
    _enqueue_in_both_queues(storage, ids)
    for token in _claim_all(storage):
        assert storage.dead(token, "error", TRACEBACK)


@dataclass(frozen=True)
class Step:
    """A maintenance step: what it takes (`TASKS` of them, in both queues), what it leaves."""

    prepare: Callable[[Storage], None]
    """Store TASKS tasks `run` must take (ids t0…) and one it must leave (id "keep")."""
    run: Callable[[Storage], int]
    """The step; returns how many tasks it took."""
    source: State
    """The state the step takes tasks out of."""
    left: int = 0
    """Tasks in `source` that it leaves: "keep", when it is in that state."""


def _prepare_expiry(storage: Storage) -> None:
    _done(storage, _ids("t"), 0.0)
    _done(storage, ["keep"], 3600.0)


def _prepare_promotion(storage: Storage) -> None:
    _enqueue_in_both_queues(storage, _ids("t"), eta=time.time() + 100)
    assert enqueue(storage, "keep", eta=time.time() + 3600) == 1


def _prepare_rescue(storage: Storage) -> None:
    _enqueue_in_both_queues(storage, _ids("t"))
    leases = storage.claim(list(QUEUES), 100, SHORT, "c1")
    enqueue(storage, "keep")
    claim_one(storage, lease_s=LEASE)
    wait_expired(*leases)


def _prepare_dead(storage: Storage) -> None:
    _dead(storage, _ids("t"))
    enqueue(storage, "keep")


STEPS = {
    "expire_results": Step(
        _prepare_expiry, lambda s: s.expire_results(time.time()), State.DONE, left=1
    ),
    "promote": Step(
        _prepare_promotion, lambda s: s.promote(time.time() + 200), State.SCHEDULED, left=1
    ),
    "rescue": Step(_prepare_rescue, lambda s: len(s.rescue(time.time())), State.RUNNING, left=1),
    "requeue_dead": Step(_prepare_dead, lambda s: s.requeue_dead(), State.DEAD),
    "purge": Step(_prepare_dead, lambda s: s.purge(State.DEAD), State.DEAD),
    "requeue_dead ids": Step(
        _prepare_dead, lambda s: s.requeue_dead([*_ids("t"), "t0", "keep", "nope"]), State.DEAD
    ),
    "purge ids": Step(
        _prepare_dead,
        lambda s: s.purge(State.DEAD, [*_ids("t"), "t0", "keep", "nope"]),
        State.DEAD,
    ),
}


def _in_state(storage: Storage, state: State) -> int:
    return sum(n for (_, s), n in storage.counts().items() if s is state)


@pytest.fixture
def observer(backend: Backend, location: str, storage: Storage) -> Iterator[Storage]:
    """Another storage at the same place: another process's view (the same one for memory)."""
    if not backend.shared:
        yield storage
        return
    other = backend.open(location)
    yield other
    other.close()


@pytest.mark.parametrize("name", list(STEPS))
def test_a_step_takes_every_task_however_many_batches_it_needs(storage: Storage, name: str) -> None:
    step = STEPS[name]
    step.prepare(storage)
    keep = storage.get("keep")
    storage.maintenance_batch = BATCH

    assert step.run(storage) == TASKS
    assert _in_state(storage, step.source) == step.left
    after = storage.get("keep")
    assert keep is not None and after is not None and after.state is keep.state
    assert step.run(storage) == 0


@pytest.mark.parametrize("name", list(STEPS))
def test_each_batch_is_committed_and_other_calls_get_in_between(
    storage: Storage, observer: Storage, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = STEPS[name]
    step.prepare(storage)
    storage.maintenance_batch = BATCH
    left: list[int] = []

    def pause(took: float) -> None:  # what another process sees between two batches
        left.append(_in_state(observer, step.source) - step.left)
        assert enqueue(observer, f"between{len(left)}") == 1

    monkeypatch.setattr(storage, "between_batches", pause, raising=False)

    assert step.run(storage) == TASKS
    assert left == [TASKS - BATCH, TASKS - 2 * BATCH]
    assert [storage.get(f"between{i}") is not None for i in (1, 2)] == [True, True]


def test_the_history_keeps_the_latest_attempts(storage: Storage) -> None:
    enqueue(storage, "a")
    ends: list[Callable[[str], object]] = [
        lambda token: storage.release(token, "shutdown"),
        lambda token: storage.retry(token, time.time(), TRACEBACK),
        lambda token: storage.crash(token, "killed by SIGKILL"),
        lambda token: storage.dead(token, "error", TRACEBACK) and storage.requeue_dead(["a"]),
    ]
    attempts = HISTORY_LIMIT + 5
    for attempt in range(1, attempts):
        assert ends[attempt % len(ends)](claim_one(storage).token)
    assert storage.ack(claim_one(storage).token, None, None)

    info = storage.get("a")
    assert info is not None and info.attempts == attempts
    kept = list(range(attempts - HISTORY_LIMIT + 1, attempts + 1))
    assert [entry["attempt"] for entry in info.history] == kept
    outcomes = ["interrupted", "error", "crashed", "error"]  # the ends', in order
    expected = [outcomes[attempt % len(ends)] for attempt in kept[:-1]] + ["succeeded"]
    assert [entry["outcome"] for entry in info.history] == expected


def test_a_message_and_a_result_of_the_default_limits_are_stored(storage: Storage) -> None:
    payload = bytes(range(256)) * (DEFAULT_MAX_MESSAGE_BYTES // 256)
    result = b"r" * DEFAULT_MAX_RESULT_BYTES
    enqueue(storage, "big", payload=payload)
    lease = claim_one(storage)
    assert lease.payload == payload
    assert storage.ack(lease.token, result, None)

    info = storage.get("big")
    assert info is not None and info.result == result and info.payload == payload
