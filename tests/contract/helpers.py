"""Small helpers shared by the contract tests (no pytest here: spawned processes import it)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

from scoter.states import State
from scoter.storage.base import Lease, NewTask, Storage

QUEUE = "default"
LEASE = 30.0
"""A lease that never expires during a test."""
SHORT = 0.05
"""A lease that a test lets expire (with `wait_expired`)."""
TRACEBACK = 'Traceback (most recent call last):\n  File "t.py", line 1\nValueError: boom\n'


def new_task(
    task_id: str,
    *,
    queue: str = QUEUE,
    name: str = "app.work",
    payload: bytes | None = None,
    priority: int = 0,
    eta: float | None = None,
    max_crashes: int = 3,
) -> NewTask:
    body = task_id.encode() if payload is None else payload
    return NewTask(task_id, name, queue, body, priority, eta, max_crashes)


def enqueue(storage: Storage, *ids: str, **fields: Any) -> int:
    return storage.enqueue([new_task(i, **fields) for i in ids])


def claim_one(
    storage: Storage, *, queue: str = QUEUE, lease_s: float = LEASE, consumer: str = "c1"
) -> Lease:
    leases = storage.claim([queue], 1, lease_s, consumer)
    assert len(leases) == 1, leases
    return leases[0]


def wait_expired(*leases: Lease) -> None:
    """Sleep until every lease has expired."""
    last = max(lease.expires for lease in leases)
    time.sleep(max(0.0, last - time.time()) + 0.02)


def crash(storage: Storage, lease: Lease) -> None:
    """Let the lease expire and rescue it, as if its consumer had been SIGKILLed running this
    attempt alone: the crash is charged."""
    assert storage.isolate(lease.token)
    wait_expired(lease)
    assert lease.id in [r.id for r in storage.rescue(time.time()) if r.charged]


def in_state(storage: Storage, task_id: str, state: State, **fields: Any) -> None:
    """Enqueue `task_id` and move it to `state` through the lifecycle."""
    if state is State.SCHEDULED:
        fields["eta"] = time.time() + 3600
    assert enqueue(storage, task_id, **fields) == 1
    if state in (State.RUNNING, State.DONE, State.DEAD):
        lease = claim_one(storage, queue=fields.get("queue", QUEUE))
        assert lease.id == task_id, "in_state needs no other task queued in its queue"
        if state is State.DONE:
            assert storage.ack(lease.token, b"result", None)
        elif state is State.DEAD:
            assert storage.dead(lease.token, "error", TRACEBACK)
    info = storage.get(task_id)
    assert info is not None and info.state is state


def one_of_each(storage: Storage, suffix: str = "", **fields: Any) -> list[str]:
    """One task in each state, with the state as its id; returns the ids in `State` order."""
    order = (State.RUNNING, State.DONE, State.DEAD, State.SCHEDULED, State.QUEUED)
    for state in order:  # queued last, so that claiming the others cannot take it
        in_state(storage, state.value + suffix, state, **fields)
    return [state.value + suffix for state in State]


# Every write an attempt makes, each with its token: the fenced operations (DESIGN G3).
WRITES: dict[str, Callable[[Storage, str], bool]] = {
    "ack": lambda s, token: s.ack(token, b"stale result", None),
    "retry": lambda s, token: s.retry(token, time.time(), "StaleError: stale"),
    "release": lambda s, token: s.release(token, "stale"),
    "dead": lambda s, token: s.dead(token, "error", "StaleError: stale"),
    "checkpoint": lambda s, token: s.checkpoint(token, b"stale checkpoint"),
    "isolate": lambda s, token: s.isolate(token),
}
# The writes that end an attempt.
SETTLES: dict[str, Callable[[Storage, str], bool]] = {
    "ack": lambda s, token: s.ack(token, b"result", None),
    "retry": lambda s, token: s.retry(token, time.time() + 3600, TRACEBACK),
    "release": lambda s, token: s.release(token, "shutdown"),
    "dead": lambda s, token: s.dead(token, "error", TRACEBACK),
}


def claim_until_empty(
    open_storage: Callable[[str], Storage],
    location: str,
    queue: str,
    batches: Sequence[int],
    consumer: str,
    start: Any,
    out: Any,
) -> None:
    """Process body for the multi-process claim test: claim and ack until nothing is left.

    Puts (consumer, claimed ids, ids whose ack was refused, error or None) on `out`.
    """
    claimed: list[str] = []
    refused: list[str] = []
    error = None
    storage = open_storage(location)
    try:
        start.wait(60)
        i = 0
        while leases := storage.claim([queue], batches[i % len(batches)], LEASE, consumer):
            for lease in leases:
                claimed.append(lease.id)
                if not storage.ack(lease.token, None, None):
                    refused.append(lease.id)
            i += 1
    except BaseException as exc:  # reported to the parent, which fails the test
        error = repr(exc)
    finally:
        storage.close()
    out.put((consumer, claimed, refused, error))


def advance_slots(
    open_storage: Callable[[str], Storage],
    location: str,
    schedule: str,
    slots: int,
    start: Any,
    out: Any,
) -> None:
    """In a spawned process: advance `schedule` through slots 1..`slots`, each by a
    compare-and-set from the slot before it, until every slot is stored; report the slots
    this process won (or the error)."""
    won: list[int] = []
    try:
        storage = open_storage(location)
        start.wait(30)
        for slot in range(1, slots + 1):
            while (last := storage.last_slots([schedule]).get(schedule)) is None or last < slot:
                expected = None if slot == 1 else slot - 1
                if last == expected and storage.enqueue_slot(
                    schedule, expected, slot, [new_task(f"slot-{slot}")]
                ):
                    won.append(slot)
        storage.close()
        out.put((won, None))
    except Exception as exc:
        out.put((won, repr(exc)))


def race(target: Callable[..., None], count: int, open_: Any, location: str) -> list[Any]:
    """Run `target(open_, location, name, barrier, out)` in `count` spawned processes that start
    together; the report each put on `out`."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(count)
    out = context.Queue()
    processes = [
        context.Process(target=target, args=(open_, location, f"p{n}", start, out), daemon=True)
        for n in range(count)
    ]
    for process in processes:
        process.start()
    try:
        return [out.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(10)
