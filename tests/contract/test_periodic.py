"""Periodic slots (`enqueue_slot`): advancing a schedule and enqueueing its slot's task are one
compare-and-set, so however many consumers race for a slot, one enqueues it."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

import pytest

from scoter.states import State
from scoter.storage.base import Storage

from .conftest import Backend
from .helpers import LEASE, QUEUE, advance_slots, new_task


def test_the_first_slot_is_stored_once(storage: Storage) -> None:
    assert storage.last_slots(["report"]) == {}
    assert storage.enqueue_slot("report", None, 100, [new_task("report:100")])
    assert not storage.enqueue_slot("report", None, 100, [new_task("report:100b")])
    assert storage.last_slots(["report", "other"]) == {"report": 100}
    assert storage.get("report:100b") is None
    info = storage.get("report:100")
    assert info is not None and info.state is State.QUEUED


def test_a_stale_last_slot_changes_nothing(storage: Storage) -> None:
    assert storage.enqueue_slot("report", None, 100, [new_task("a")])
    assert not storage.enqueue_slot("report", 50, 200, [new_task("b")])
    assert storage.last_slots(["report"]) == {"report": 100}
    assert storage.get("b") is None
    assert storage.enqueue_slot("report", 100, 200, [new_task("b"), new_task("c")])
    assert storage.last_slots(["report"]) == {"report": 200}
    assert storage.counts() == {(QUEUE, State.QUEUED): 3}


def test_advancing_without_tasks_skips_slots(storage: Storage) -> None:
    assert storage.enqueue_slot("report", None, 100, [])
    assert storage.last_slots(["report"]) == {"report": 100}
    assert storage.counts() == {}


def test_schedules_are_independent(storage: Storage) -> None:
    assert storage.enqueue_slot("a", None, 100, [])
    assert storage.enqueue_slot("b", None, 7, [])
    assert storage.enqueue_slot("a", 100, 160, [])
    assert storage.last_slots(["a", "b"]) == {"a": 160, "b": 7}


def test_a_stored_id_is_left_as_it_is(storage: Storage) -> None:
    """A slot's task that already ran is not run again, whatever the schedule's row says."""
    assert storage.enqueue([new_task("report:100")]) == 1
    [lease] = storage.claim([QUEUE], 1, LEASE, "c1")
    assert storage.ack(lease.token, None, None)
    assert storage.enqueue_slot("report", None, 100, [new_task("report:100")])
    info = storage.get("report:100")
    assert info is not None and info.state is State.DONE


def test_racing_threads_advance_a_slot_once(storage: Storage) -> None:
    assert storage.enqueue_slot("report", None, 100, [])
    start = threading.Barrier(8)
    won: list[int] = []

    def race(n: int) -> None:
        start.wait(30)
        if storage.enqueue_slot("report", 100, 200, [new_task(f"report:200:{n}")]):
            won.append(n)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1
    assert storage.counts() == {(QUEUE, State.QUEUED): 1}
    assert storage.get(f"report:200:{won[0]}") is not None


def test_racing_processes_enqueue_each_slot_once(
    backend: Backend, location: str, storage: Storage
) -> None:
    if not backend.shared:
        pytest.skip("this backend's tasks live in one process")
    slots = 40
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    out = context.Queue()
    processes = [
        context.Process(
            target=advance_slots,
            args=(backend.open, location, "report", slots, start, out),
            daemon=True,
        )
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    try:
        reports = [out.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    assert [error for _, error in reports if error] == []
    wins = Counter(slot for won, _ in reports for slot in won)
    assert sorted(wins) == list(range(1, slots + 1))
    assert set(wins.values()) == {1}
    assert storage.counts() == {(QUEUE, State.QUEUED): slots}
    assert storage.last_slots(["report"]) == {"report": slots}
