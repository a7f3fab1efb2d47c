"""FollowUp: acks of workers finishing together share one storage write (group commit)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from scoter.consumer.followup import FollowUp
from scoter.states import State
from scoter.storage.base import Ack, Lease, NewTask, Storage

QUEUE = "q"
WORKERS = 8


class CountingStorage:
    """Passes writes to a real storage, counting them and holding each one a moment, so that
    acks arriving meanwhile queue up (as they do behind a real commit)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.writes: list[int] = []
        self.fail_with: Exception | None = None

    def ack_many_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer: str
    ) -> tuple[list[bool], list[Lease]]:
        self.writes.append(len(acks))
        threading.Event().wait(0.005)
        if self.fail_with is not None:
            raise self.fail_with
        return self.storage.ack_many_and_claim(acks, queues, n, lease_s, consumer)


def _claimed(storage: Storage, n: int, backlog: int = 0) -> list[Lease]:
    """`n` tasks claimed, `backlog` more left queued."""
    storage.enqueue([NewTask(f"t{i}", "noop", QUEUE, b"[]") for i in range(n + backlog)])
    return storage.claim([QUEUE], n, 30.0, "c")


def _follow_up(storage: CountingStorage, want: int = 1) -> FollowUp:
    return FollowUp(storage, [QUEUE], 30.0, "c", lambda: want)  # type: ignore[arg-type]


def _ack_all(follow_up: FollowUp, leases: list[Lease], want: int) -> list[tuple[bool, list[Lease]]]:
    results: list[tuple[bool, list[Lease]]] = [(False, [])] * len(leases)
    start = threading.Barrier(len(leases))

    def worker(i: int) -> None:
        start.wait()
        results[i] = follow_up.ack(Ack(leases[i].token, None, None), want)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(leases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_acks_arriving_together_share_writes_and_each_gets_its_next_task(
    storage: Storage,
) -> None:
    leases = _claimed(storage, WORKERS, backlog=WORKERS)
    counting = CountingStorage(storage)

    results = _ack_all(_follow_up(counting), leases, want=1)

    assert all(acked for acked, _ in results)
    assert sum(counting.writes) == WORKERS and len(counting.writes) < WORKERS
    following = [lease.id for _, got in results for lease in got]
    assert sorted(following) == sorted(f"t{i}" for i in range(WORKERS, 2 * WORKERS))
    for lease in leases:
        info = storage.get(lease.id)
        assert info is not None and info.state is State.DONE


def test_a_stale_ack_is_refused_alone(storage: Storage) -> None:
    first, second = _claimed(storage, 2)
    assert storage.release(first.token, "gone")
    results = _ack_all(_follow_up(CountingStorage(storage), want=0), [first, second], want=0)
    assert [acked for acked, _ in results] == [False, True]
    assert [got for _, got in results] == [[], []]


def test_a_failed_write_raises_in_every_worker_it_carried(storage: Storage) -> None:
    leases = _claimed(storage, 4)
    counting = CountingStorage(storage)
    counting.fail_with = ConnectionError("storage down")
    follow_up = _follow_up(counting)
    errors: list[BaseException] = []

    def worker(lease: Lease) -> None:
        with pytest.raises(ConnectionError) as raised:
            follow_up.ack(Ack(lease.token, None, None), 1)
        errors.append(raised.value)

    threads = [threading.Thread(target=worker, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 4
    # Nothing was written; the next write goes through once the storage is back.
    counting.fail_with = None
    assert follow_up.ack(Ack(leases[0].token, None, None), 0) == (True, [])
