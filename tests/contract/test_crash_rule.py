"""The crash rule: a holder that died running several attempts cannot say which one killed it,
so `rescue` charges a crash only to an attempt it ran alone (`isolate`); the others are queued
as suspects, charged nothing, for their next holder to run alone. `crash` always charges."""

from __future__ import annotations

import time

from scoter.states import State
from scoter.storage.base import EXPIRED, SPARED, Lease, Storage

from .helpers import LEASE, QUEUE, SHORT, claim_one, enqueue, wait_expired


def _rescue_expired(storage: Storage, *leases: Lease) -> dict[str, bool]:
    """Let the leases expire and rescue them: whether each task's crash was charged."""
    wait_expired(*leases)
    rescued = {r.id: r.charged for r in storage.rescue(time.time())}
    assert sorted(rescued) == sorted(lease.id for lease in leases)
    return rescued


def _make_suspect(storage: Storage, task_id: str) -> None:
    """Run `task_id` (queued, alone in its queue) not alone; its holder dies."""
    lease = claim_one(storage, lease_s=SHORT)
    assert lease.id == task_id
    assert _rescue_expired(storage, lease) == {task_id: False}


def test_a_new_task_is_no_suspect(storage: Storage) -> None:
    enqueue(storage, "a")
    info = storage.get("a")
    assert info is not None and not info.suspect
    assert not claim_one(storage).suspect


def test_an_attempt_not_alone_is_charged_nothing_and_becomes_a_suspect(storage: Storage) -> None:
    enqueue(storage, "a", name="app.innocent", max_crashes=1)
    lease = claim_one(storage, lease_s=SHORT, consumer="c1")
    wait_expired(lease)

    [rescued] = storage.rescue(time.time())

    assert (rescued.id, rescued.name, rescued.state, rescued.crashes, rescued.charged) == (
        "a", "app.innocent", State.QUEUED, 0, False,
    )  # fmt: skip
    info = storage.get("a")
    assert info is not None
    assert (info.state, info.crashes, info.suspect, info.reason) == (State.QUEUED, 0, True, None)
    assert info.consumer is None and info.lease_expires is None
    [entry] = info.history
    assert (entry["attempt"], entry["outcome"], entry["consumer"]) == (1, "crashed", "c1")
    assert entry["detail"] == SPARED
    assert "not charged" in SPARED and "alone" in SPARED

    again = claim_one(storage)
    assert (again.attempt, again.crashes, again.suspect) == (2, 0, True)


def test_one_rescue_charges_the_attempt_run_alone_only(storage: Storage) -> None:
    enqueue(storage, "alone", "beside")
    leases = {lease.id: lease for lease in storage.claim([QUEUE], 2, SHORT, "c1")}
    assert storage.isolate(leases["alone"].token)

    assert _rescue_expired(storage, *leases.values()) == {"alone": True, "beside": False}

    alone, beside = storage.get("alone"), storage.get("beside")
    assert alone is not None and beside is not None
    assert (alone.crashes, alone.suspect, alone.history[-1]["detail"]) == (1, False, EXPIRED)
    assert (beside.crashes, beside.suspect, beside.history[-1]["detail"]) == (0, True, SPARED)


def test_a_suspect_stays_one_and_is_charged_once_run_alone(storage: Storage) -> None:
    enqueue(storage, "a", max_crashes=2)
    _make_suspect(storage, "a")
    _make_suspect(storage, "a")  # not alone again: still nothing charged

    lease = claim_one(storage, lease_s=SHORT)
    assert (lease.suspect, lease.crashes) == (True, 0)
    assert storage.isolate(lease.token)
    assert _rescue_expired(storage, lease) == {"a": True}

    info = storage.get("a")
    assert info is not None and (info.state, info.crashes, info.suspect) == (State.QUEUED, 1, True)
    assert [h["detail"] for h in info.history] == [SPARED, SPARED, EXPIRED]


def test_isolate_is_fenced(storage: Storage) -> None:
    enqueue(storage, "a", max_crashes=1)
    old = claim_one(storage, lease_s=SHORT, consumer="old")
    wait_expired(old)
    assert storage.rescue(time.time())[0].charged is False
    new = claim_one(storage, lease_s=SHORT, consumer="new")

    assert storage.isolate(old.token) is False  # rescued and claimed again
    assert storage.isolate("no-such-token") is False

    # The stale isolate left the new attempt not alone: its crash is not charged either.
    assert _rescue_expired(storage, new) == {"a": False}
    info = storage.get("a")
    assert info is not None and (info.state, info.crashes) == (State.QUEUED, 0)


def test_isolate_of_a_settled_attempt_is_refused(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage)
    assert storage.isolate(lease.token)
    assert storage.isolate(lease.token)  # again: still held, still alone
    assert storage.ack(lease.token, None, None)

    assert storage.isolate(lease.token) is False


def test_every_claim_starts_an_attempt_not_alone(storage: Storage) -> None:
    enqueue(storage, "a")
    first = claim_one(storage)
    assert storage.isolate(first.token)
    assert storage.release(first.token, "shutdown")

    second = claim_one(storage, lease_s=SHORT)

    assert _rescue_expired(storage, second) == {"a": False}


def test_crash_charges_alone_or_not(storage: Storage) -> None:
    enqueue(storage, "beside", "alone", max_crashes=2)
    beside = claim_one(storage)
    alone = claim_one(storage)
    assert storage.isolate(alone.token)

    for lease in (beside, alone):
        rescued = storage.crash(lease.token, "killed by SIGKILL")
        assert rescued is not None
        assert (rescued.id, rescued.state, rescued.crashes, rescued.charged) == (
            lease.id, State.QUEUED, 1, True,
        )  # fmt: skip
        info = storage.get(lease.id)
        assert info is not None and (info.crashes, info.suspect) == (1, False)
        assert info.history[-1]["detail"] == "killed by SIGKILL"

    lease = claim_one(storage)  # a crash at max_crashes: dead, as ever
    rescued = storage.crash(lease.token, "killed by SIGKILL")
    assert rescued is not None and (rescued.state, rescued.crashes) == (State.DEAD, 2)


def test_requeue_dead_resets_suspect(storage: Storage) -> None:
    enqueue(storage, "a")
    _make_suspect(storage, "a")
    assert storage.dead(claim_one(storage).token, "error", "E: e")

    assert storage.requeue_dead(["a"]) == 1

    info = storage.get("a")
    assert info is not None and (info.state, info.suspect) == (State.QUEUED, False)
    assert not claim_one(storage).suspect


def test_reenqueue_of_a_finished_id_resets_suspect(storage: Storage) -> None:
    enqueue(storage, "done", "dead")
    leases = storage.claim([QUEUE], 2, SHORT, "c1")
    assert _rescue_expired(storage, *leases) == {"done": False, "dead": False}
    assert enqueue(storage, "done", "dead") == 0  # live: left as it is, suspect included
    leases = {lease.id: lease for lease in storage.claim([QUEUE], 2, LEASE, "c1")}
    assert leases["done"].suspect and leases["dead"].suspect
    assert storage.ack(leases["done"].token, None, None)
    assert storage.dead(leases["dead"].token, "error", "E: e")

    assert enqueue(storage, "done", "dead") == 2

    for task_id in ("done", "dead"):
        info = storage.get(task_id)
        assert info is not None and (info.state, info.suspect) == (State.QUEUED, False)
    assert not any(lease.suspect for lease in storage.claim([QUEUE], 2, LEASE, "c1"))


def test_claims_neither_skip_nor_reorder_suspects(storage: Storage) -> None:
    enqueue(storage, "old")
    _make_suspect(storage, "old")
    enqueue(storage, "young")
    enqueue(storage, "urgent", priority=5)
    _make_suspect(storage, "urgent")

    leases = storage.claim([QUEUE], 3, LEASE, "c1")

    assert [(lease.id, lease.suspect) for lease in leases] == [
        ("urgent", True), ("old", True), ("young", False),
    ]  # fmt: skip


def test_a_task_that_kills_its_holder_goes_dead_and_the_tasks_beside_it_never_do(
    storage: Storage,
) -> None:
    """A poison task claimed with four others kills their holder three times over: no crash
    is charged to anyone. Run alone, as suspects are, the poison is charged each time and
    goes dead at max_crashes; the four others run alone once each and are done, uncharged."""
    ids = ["t1", "t2", "poison", "t4", "t5"]
    enqueue(storage, *ids, max_crashes=3)
    for _ in range(3):
        leases = storage.claim([QUEUE], 5, SHORT, "c1")
        assert _rescue_expired(storage, *leases) == dict.fromkeys(ids, False)

    while leases := storage.claim([QUEUE], 1, SHORT, "c2"):
        [lease] = leases
        assert lease.suspect
        assert storage.isolate(lease.token)
        if lease.id == "poison":
            assert _rescue_expired(storage, lease) == {"poison": True}
        else:
            assert storage.ack(lease.token, None, None)

    poison = storage.get("poison")
    assert poison is not None
    assert (poison.state, poison.reason, poison.crashes) == (State.DEAD, "crashed", 3)
    assert [h["detail"] for h in poison.history] == [SPARED] * 3 + [EXPIRED] * 3
    for task_id in ("t1", "t2", "t4", "t5"):
        info = storage.get(task_id)
        assert info is not None and (info.state, info.crashes) == (State.DONE, 0)
        assert [h["outcome"] for h in info.history] == ["crashed"] * 3 + ["succeeded"]
    assert storage.counts() == {(QUEUE, State.DONE): 4, (QUEUE, State.DEAD): 1}


def test_a_crash_not_charged_never_kills_its_task(storage: Storage) -> None:
    """Only a charged crash can make a task dead `crashed`: a record whose crashes already
    reach max_crashes (written by an older scoter or by hand: enqueue itself allows it) is
    queued as a suspect when its holder dies beside other attempts."""
    enqueue(storage, "a", max_crashes=0)
    lease = claim_one(storage, lease_s=SHORT)
    assert _rescue_expired(storage, lease) == {"a": False}
    info = storage.get("a")
    assert info is not None
    assert (info.state, info.crashes, info.suspect, info.reason) == (State.QUEUED, 0, True, None)
