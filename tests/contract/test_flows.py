"""Pipelines and chords in storage: an ack stores its flow's hand-off in the same atomic step
and only when it lands; a chord counts each member once and the member that completes it, and
only that one, stores the callback; a death stores its error handler the same way."""

from __future__ import annotations

import threading
import time

from scoter.states import State
from scoter.storage.base import Ack, Flow, Join, Lease, NewTask, Storage

from .conftest import Backend
from .helpers import LEASE, QUEUE, SHORT, TRACEBACK, claim_one, enqueue, new_task, wait_expired


def _state(storage: Storage, task_id: str) -> State | None:
    info = storage.get(task_id)
    return None if info is None else info.state


def _ack(storage: Storage, lease: Lease, flow: Flow | None, n: int = 0) -> tuple[bool, list[str]]:
    """Ack one lease with `flow`, claiming up to `n`: (landed, ids claimed)."""
    [landed], leases = storage.ack_many_and_claim(
        [Ack(lease.token, b"r", None, flow)], [QUEUE], n, LEASE, "c1"
    )
    return landed, [lease.id for lease in leases]


def _join(
    index: int, size: int = 3, chord: str = "chord", callback: str = "callback", queue: str = QUEUE
) -> Flow:
    result = f"result {index}".encode()
    return Flow(join=Join(chord, index, size, result, new_task(callback, queue=queue)))


def test_an_ack_stores_the_next_step_with_it(storage: Storage) -> None:
    enqueue(storage, "p")
    lease = claim_one(storage)

    assert _ack(storage, lease, Flow(follow=(new_task("p.1", payload=b"next"),))) == (True, [])

    assert _state(storage, "p") is State.DONE
    following = claim_one(storage)
    assert (following.id, following.payload, following.attempt) == ("p.1", b"next", 1)


def test_the_claim_of_the_same_call_may_take_the_next_step(storage: Storage) -> None:
    enqueue(storage, "p")
    lease = claim_one(storage)

    assert _ack(storage, lease, Flow(follow=(new_task("p.1"),)), n=5) == (True, ["p.1"])
    assert _state(storage, "p.1") is State.RUNNING


def test_a_stale_ack_stores_no_next_step(storage: Storage) -> None:
    """The fence: an attempt whose lease expired and whose task was claimed again cannot hand
    the pipeline on; the new owner's ack does, once."""
    enqueue(storage, "p")
    stale = claim_one(storage, lease_s=SHORT)
    wait_expired(stale)
    assert [r.id for r in storage.rescue(time.time())] == ["p"]
    owner = claim_one(storage)

    assert _ack(storage, stale, Flow(follow=(new_task("p.1-stale"),))) == (False, [])
    assert storage.get("p.1-stale") is None
    assert _state(storage, "p") is State.RUNNING

    assert _ack(storage, owner, Flow(follow=(new_task("p.1"),))) == (True, [])
    assert _ack(storage, owner, Flow(follow=(new_task("p.1-again"),))) == (False, [])
    assert storage.get("p.1-again") is None
    assert storage.counts() == {(QUEUE, State.DONE): 1, (QUEUE, State.QUEUED): 1}


def test_a_group_commit_mixes_plain_acks_flows_and_refused_acks(storage: Storage) -> None:
    enqueue(storage, "plain", "flow", "stale")
    leases = storage.claim([QUEUE], 3, LEASE, "c1")
    by_id = {lease.id: lease for lease in leases}
    assert storage.ack(by_id["stale"].token, None, None)
    acks = [
        Ack(by_id["plain"].token, b"1", None),
        Ack(by_id["flow"].token, b"2", None, Flow(follow=(new_task("flow.1"), new_task("x")))),
        Ack(by_id["stale"].token, b"3", None, Flow(follow=(new_task("stale.1"),))),
        Ack(by_id["flow"].token, b"4", None, Flow(follow=(new_task("twice"),))),
    ]

    acked, claimed = storage.ack_many_and_claim(acks, [QUEUE], 10, LEASE, "c1")

    assert acked == [True, True, False, False]
    assert sorted(lease.id for lease in claimed) == ["flow.1", "x"]
    assert storage.get("stale.1") is None and storage.get("twice") is None
    info = storage.get("flow")
    assert info is not None and info.result == b"2"


def test_a_next_step_already_live_is_left_as_it_is(storage: Storage) -> None:
    enqueue(storage, "p")
    enqueue(storage, "p.1", payload=b"first")
    lease = claim_one(storage)
    assert lease.id == "p"

    assert _ack(storage, lease, Flow(follow=(new_task("p.1", payload=b"second"),))) == (True, [])

    info = storage.get("p.1")
    assert info is not None and info.payload == b"first"
    assert storage.counts()[(QUEUE, State.QUEUED)] == 1


def test_a_next_step_that_finished_is_not_stored_again(storage: Storage) -> None:
    """Each step is stored once: a hand-off to an id already done leaves it done, unrun."""
    enqueue(storage, "p.1")
    assert storage.ack(claim_one(storage).token, b"first run", None)
    enqueue(storage, "p")
    lease = claim_one(storage)

    assert _ack(storage, lease, Flow(follow=(new_task("p.1", payload=b"again"),)), n=5)[1] == []

    info = storage.get("p.1")
    assert info is not None
    assert (info.state, info.result, info.attempts) == (State.DONE, b"first run", 1)


def test_a_chord_stores_its_callback_with_the_ack_of_its_last_member(storage: Storage) -> None:
    enqueue(storage, "m0", "m1", "m2")
    leases = {lease.id: lease for lease in storage.claim([QUEUE], 3, LEASE, "c1")}
    assert storage.chord_info("chord") is None

    assert _ack(storage, leases["m2"], _join(2))[0]
    assert _ack(storage, leases["m0"], _join(0))[0]
    assert storage.get("callback") is None
    info = storage.chord_info("chord")
    assert info is not None and (info.size, info.results) == (3, {0: b"result 0", 2: b"result 2"})

    assert _ack(storage, leases["m1"], _join(1))[0]

    assert _state(storage, "callback") is State.QUEUED
    info = storage.chord_info("chord")
    assert info is not None and sorted(info.results) == [0, 1, 2]


def test_a_chord_counts_each_member_index_once(storage: Storage) -> None:
    """A member index finishing a second time (a task enqueued again with the same id) is not
    counted again, so it cannot stand in for a member that has not finished."""
    enqueue(storage, "m0", "m0-again", "m1")
    leases = {lease.id: lease for lease in storage.claim([QUEUE], 3, LEASE, "c1")}

    assert _ack(storage, leases["m0"], _join(0, size=2))[0]
    assert _ack(storage, leases["m0-again"], _join(0, size=2, callback="too-early"))[0]
    assert storage.get("too-early") is None
    info = storage.chord_info("chord")
    assert info is not None and info.results == {0: b"result 0"}

    assert _ack(storage, leases["m1"], _join(1, size=2))[0]
    assert _state(storage, "callback") is State.QUEUED


def test_a_refused_member_ack_counts_nothing(storage: Storage) -> None:
    enqueue(storage, "m0")
    lease = claim_one(storage)
    assert storage.release(lease.token, "shutdown")

    assert _ack(storage, lease, _join(0, size=1)) == (False, [])

    assert storage.chord_info("chord") is None
    assert storage.get("callback") is None


def test_members_acked_in_one_group_store_the_callback_once(storage: Storage) -> None:
    enqueue(storage, "m0", "m1", "m2")
    leases = storage.claim([QUEUE], 3, LEASE, "c1")
    acks = [
        Ack(lease.token, None, None, _join(int(lease.id[1]), callback=f"cb-{lease.id}"))
        for lease in leases
    ]

    acked, claimed = storage.ack_many_and_claim(acks, [QUEUE], 5, LEASE, "c1")

    assert acked == [True, True, True]
    assert [lease.id for lease in claimed] == [f"cb-{leases[-1].id}"]


def test_members_acked_at_once_by_many_clients_store_one_callback(
    backend: Backend, location: str, storage: Storage
) -> None:
    """Each member offers a callback of its own id: exactly one is stored, by the member
    whose ack completed the count, however the acks of many clients interleave."""
    size = 24
    enqueue(storage, *(f"m{i:02}" for i in range(size)))
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def client(n: int) -> None:
        mine = storage if not backend.shared else backend.open(location)
        try:
            start.wait(30)
            while leases := mine.claim([QUEUE], 2, LEASE, f"c{n}"):
                acks = [
                    Ack(
                        lease.token,
                        None,
                        None,
                        _join(int(lease.id[1:]), size, "big", f"cb-{lease.id}", "cb"),
                    )
                    for lease in leases
                ]
                acked, _ = mine.ack_many_and_claim(acks, [QUEUE], 0, LEASE, f"c{n}")
                assert acked == [True] * len(acks)
        except BaseException as exc:
            errors.append(exc)
        finally:
            if mine is not storage:
                mine.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []

    assert len(storage.claim(["cb"], size, LEASE, "c1")) == 1
    info = storage.chord_info("big")
    assert info is not None and sorted(info.results) == list(range(size))


def test_the_callbacks_ack_releases_its_chord(storage: Storage) -> None:
    enqueue(storage, "m0")
    assert _ack(storage, claim_one(storage), _join(0, size=1))[0]
    callback = claim_one(storage)
    assert callback.id == "callback"

    assert _ack(storage, callback, Flow(follow=(new_task("callback.1"),), release="chord"))[0]

    assert storage.chord_info("chord") is None
    assert _state(storage, "callback.1") is State.QUEUED


def test_dead_and_enqueue_stores_the_error_handler_with_the_death(storage: Storage) -> None:
    enqueue(storage, "p.2")
    lease = claim_one(storage)
    handler = NewTask("p.error", "app.on_error", QUEUE, b"failure")

    assert storage.dead_and_enqueue(lease.token, "error", TRACEBACK, [handler])

    info = storage.get("p.2")
    assert info is not None and (info.state, info.reason, info.errors) == (State.DEAD, "error", 1)
    assert claim_one(storage).id == "p.error"
    assert not storage.dead_and_enqueue(lease.token, "error", TRACEBACK, [new_task("again")])
    assert storage.get("again") is None


def test_a_stale_death_stores_no_error_handler(storage: Storage) -> None:
    enqueue(storage, "p")
    stale = claim_one(storage, lease_s=SHORT)
    wait_expired(stale)
    storage.rescue(time.time())
    owner = claim_one(storage)

    assert not storage.dead_and_enqueue(stale.token, "error", TRACEBACK, [new_task("p.error")])

    assert storage.get("p.error") is None
    assert _state(storage, "p") is State.RUNNING
    assert storage.ack(owner.token, None, None)
