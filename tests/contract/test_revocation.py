"""Revocation and the earliest eta: `revoke`/`restore` by id, name revocations, `next_eta`."""

from __future__ import annotations

import multiprocessing
import threading
import time

from scoter.states import REVOKED, State
from scoter.storage.base import Revocation, Storage

from .conftest import Backend
from .helpers import LEASE, QUEUE, claim_one, enqueue, new_task, one_of_each


def _state(storage: Storage, task_id: str) -> State | None:
    info = storage.get(task_id)
    return None if info is None else info.state


def test_revoking_waiting_tasks_ends_them_dead_revoked(storage: Storage) -> None:
    one_of_each(storage)
    found = storage.revoke(["queued", "scheduled", "done", "dead", "nope"])
    assert found == {"queued": State.QUEUED, "scheduled": State.SCHEDULED}
    for task_id in ("queued", "scheduled"):
        info = storage.get(task_id)
        assert info is not None and info.state is State.DEAD and info.reason == REVOKED
        assert info.error == f"revoked while {task_id}"
        assert info.history[-1]["outcome"] == REVOKED
    assert storage.claim([QUEUE], 10, LEASE, "c1") == []
    assert storage.promote(time.time() + 7200) == 0
    done, dead = storage.get("done"), storage.get("dead")
    assert done is not None and done.state is State.DONE
    assert dead is not None and dead.reason == "error"
    assert storage.revocations().ids == frozenset()


def test_restore_puts_a_revoked_task_back_where_it_waited(storage: Storage) -> None:
    one_of_each(storage)
    storage.revoke(["queued", "scheduled"])
    assert storage.restore(["queued", "scheduled", "dead", "done"]) == 2
    assert _state(storage, "queued") is State.QUEUED
    assert _state(storage, "scheduled") is State.SCHEDULED
    assert _state(storage, "dead") is State.DEAD  # dead for another reason: left as it is
    info = storage.get("queued")
    assert info is not None and info.reason is None and info.error is None
    assert claim_one(storage).id == "queued"
    assert storage.restore(["queued"]) == 0


def test_a_running_task_is_listed_until_it_ends(storage: Storage) -> None:
    enqueue(storage, "a", "b")
    lease = claim_one(storage)
    assert storage.revoke([lease.id]) == {lease.id: State.RUNNING}
    assert _state(storage, lease.id) is State.RUNNING  # its lease holds: no overlap
    assert storage.heartbeat([lease.token], LEASE) == set()
    assert storage.revocations().ids == {lease.id}
    assert storage.release(lease.token, "stopping")  # requeued: still listed, for its claimer
    assert storage.revocations().ids == {lease.id}
    again = claim_one(storage)
    assert again.id == lease.id
    assert storage.dead(again.token, REVOKED, "revoked while it ran")
    assert storage.revocations().ids == frozenset()  # ended: no longer listed
    storage.forget_revocation(lease.id)  # what its consumer does next
    assert not storage.forget_revocation(lease.id)
    assert storage.requeue_dead([lease.id]) == 1  # an operator's retry runs it
    assert storage.revocations().ids == frozenset()


def test_restore_cancels_a_running_revocation(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage)
    storage.revoke(["a"])
    assert storage.restore(["a"]) == 1
    assert storage.revocations().ids == frozenset()
    assert storage.ack(lease.token, None, None)


def test_a_re_enqueued_id_is_not_revoked_by_an_old_record(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage)
    storage.revoke(["a"])
    assert storage.ack(lease.token, None, None)
    time.sleep(0.002)  # a new record's created_at differs
    assert enqueue(storage, "a") == 1
    assert storage.revocations().ids == frozenset()


def test_name_revocations_are_stored_replaced_and_taken_once(storage: Storage) -> None:
    assert storage.revocations().names == {}
    storage.revoke_task("app.report", None, False)
    storage.revoke_task("app.mail", 1_900_000_000.5, True)
    assert storage.revocations().names == {
        "app.report": Revocation(None, False),
        "app.mail": Revocation(1_900_000_000.5, True),
    }
    assert not storage.take_revocation("app.report")  # not a once: stays
    assert storage.take_revocation("app.mail")
    assert not storage.take_revocation("app.mail")
    storage.revoke_task("app.report", 5.0, False)
    assert storage.revocations().names == {"app.report": Revocation(5.0, False)}
    assert storage.restore_task("app.report")
    assert not storage.restore_task("app.report")
    assert storage.revocations().names == {}


def test_next_eta_is_the_earliest_scheduled(storage: Storage) -> None:
    assert storage.next_eta() is None
    now = time.time()
    storage.enqueue([new_task("later", eta=now + 600), new_task("sooner", eta=now + 60)])
    enqueue(storage, "queued")
    eta = storage.next_eta()
    assert eta is not None and abs(eta - (now + 60)) < 0.5
    storage.revoke(["sooner"])
    eta = storage.next_eta()
    assert eta is not None and abs(eta - (now + 600)) < 0.5
    assert storage.promote(now + 700) == 1
    assert storage.next_eta() is None


def _take(backend: Backend, location: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    storage = backend.open(location)
    try:
        results.put(storage.take_revocation("app.once"))
    finally:
        storage.close()


def test_a_once_revocation_is_taken_by_one_of_many(
    backend: Backend, location: str, storage: Storage
) -> None:
    """However many consumers claim a task of a `revoke_once` name at once, one revokes it."""
    storage.revoke_task("app.once", None, True)
    if backend.shared:
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        procs = [ctx.Process(target=_take, args=(backend, location, results)) for _ in range(4)]
        for p in procs:
            p.start()
        taken = sorted(results.get(timeout=60) for _ in procs)
        for p in procs:
            p.join(10)
    else:
        start = threading.Barrier(6)
        out: list[bool] = []

        def take() -> None:
            start.wait()
            out.append(storage.take_revocation("app.once"))

        threads = [threading.Thread(target=take) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        taken = sorted(out)
    assert taken == [False] * (len(taken) - 1) + [True]
