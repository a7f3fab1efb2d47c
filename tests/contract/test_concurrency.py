"""Atomicity under contention, the heart of DESIGN G2: no task is ever claimed twice at once."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from scoter.states import State
from scoter.storage.base import Lease, Storage

from .conftest import Backend
from .helpers import LEASE, QUEUE, SHORT, claim_until_empty, new_task, wait_expired


def _run_threads(targets: list[Callable[[], None]], timeout: float = 60) -> None:
    """Run every target in its own thread, started together; re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def run(target: Callable[[], None]) -> None:
        try:
            start.wait(timeout)
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_threads_claim_each_task_exactly_once(storage: Storage) -> None:
    ids = [f"t{i:03}" for i in range(500)]
    assert storage.enqueue([new_task(i, priority=n % 4) for n, i in enumerate(ids)]) == 500
    claimed: list[list[str]] = [[] for _ in range(8)]
    refused: list[str] = []

    def consumer(n: int) -> Callable[[], None]:
        def run() -> None:
            batches = (1, 2, 3, 5, 8, 13)
            i = n
            while leases := storage.claim([QUEUE], batches[i % 6], LEASE, f"c{n}"):
                for lease in leases:
                    claimed[n].append(lease.id)
                    if not storage.ack(lease.token, lease.id.encode(), None):
                        refused.append(lease.id)
                i += 1

        return run

    _run_threads([consumer(n) for n in range(8)])

    everything = Counter(i for ids_of_one in claimed for i in ids_of_one)
    assert [i for i, times in everything.items() if times > 1] == []
    assert sorted(everything) == ids
    assert refused == []
    assert storage.counts() == {(QUEUE, State.DONE): 500}
    for task_id in ids:
        info = storage.get(task_id)
        assert info is not None
        assert (info.attempts, info.result) == (1, task_id.encode())


def test_processes_claim_each_task_exactly_once(
    backend: Backend, location: str, storage: Storage
) -> None:
    if not backend.shared:
        pytest.skip("this backend's tasks live in one process")
    ids = [f"t{i:04}" for i in range(1000)]
    assert storage.enqueue([new_task(i, priority=n % 3) for n, i in enumerate(ids)]) == 1000
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    out = context.Queue()
    batch_sizes = [(1, 7), (2, 3, 10), (5, 1, 16), (32, 4)]
    processes = [
        context.Process(
            target=claim_until_empty,
            args=(backend.open, location, QUEUE, batches, f"p{n}", start, out),
            daemon=True,
        )
        for n, batches in enumerate(batch_sizes)
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

    assert [error for *_, error in reports if error] == []
    assert [refused for _, _, refused, _ in reports if refused] == []
    everything = Counter(i for _, claimed, _, _ in reports for i in claimed)
    assert [i for i, times in everything.items() if times > 1] == []
    assert sorted(everything) == ids
    assert storage.counts() == {(QUEUE, State.DONE): 1000}
    assert all(process.exitcode == 0 for process in processes)


def test_concurrent_enqueues_of_one_id_store_it_once(storage: Storage) -> None:
    ids = [f"t{i:03}" for i in range(200)]
    stored: list[int] = []

    def producer(offset: int) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, 200, 20):
                chunk = ids[(start + offset) % 200 :][:20]
                stored.append(storage.enqueue([new_task(i) for i in chunk]))

        return run

    _run_threads([producer(n * 7) for n in range(8)])

    assert sum(stored) == 200
    assert storage.counts() == {(QUEUE, State.QUEUED): 200}


def test_each_expired_lease_is_settled_or_rescued_never_both(storage: Storage) -> None:
    ids = [f"t{i:03}" for i in range(300)]
    storage.enqueue([new_task(i) for i in ids])
    leases = storage.claim([QUEUE], 300, SHORT, "c1")
    assert len(leases) == 300
    alone = {lease.id for lease in leases[::3] if storage.isolate(lease.token)}
    wait_expired(*leases)
    acked: list[str] = []
    rescued: list[str] = []
    done = threading.Event()

    def acker(mine: list[Lease]) -> Callable[[], None]:
        def run() -> None:
            acked.extend(lease.id for lease in mine if storage.ack(lease.token, b"ok", None))

        return run

    def rescuer() -> None:
        while not done.is_set():
            rescued.extend(r.id for r in storage.rescue(time.time()))
            time.sleep(0.001)
        rescued.extend(r.id for r in storage.rescue(time.time()))

    targets = [acker(leases[0::2]), acker(leases[1::2])]
    rescuing = threading.Thread(target=rescuer, daemon=True)
    rescuing.start()
    try:
        _run_threads(targets)
    finally:
        done.set()
        rescuing.join(30)

    assert not set(acked) & set(rescued)
    assert sorted(acked + rescued) == ids
    for task_id in acked:
        info = storage.get(task_id)
        assert info is not None and (info.state, info.result, info.crashes) == (
            State.DONE, b"ok", 0,
        )  # fmt: skip
    for task_id in rescued:  # charged when it ran alone, else a suspect
        info = storage.get(task_id)
        charged = task_id in alone
        assert info is not None and (info.state, info.result, info.crashes, info.suspect) == (
            State.QUEUED, None, int(charged), not charged,
        )  # fmt: skip
