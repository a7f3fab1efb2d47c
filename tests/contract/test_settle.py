"""ack, retry, release, dead: the ends of an attempt, their counters, results and history."""

from __future__ import annotations

import dataclasses
import time

import pytest

from scoter.states import State
from scoter.storage.base import Ack, Storage, TaskInfo

from .helpers import LEASE, QUEUE, SHORT, TRACEBACK, claim_one, crash, enqueue, one_of_each


def _get(storage: Storage, task_id: str) -> TaskInfo:
    info = storage.get(task_id)
    assert info is not None
    return info


def _assert_unleased(info: TaskInfo) -> None:
    assert info.consumer is None
    assert info.lease_expires is None


def test_ack_moves_to_done_with_result_and_history(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage, consumer="c1")

    before = time.time()
    assert storage.ack(lease.token, b"\x00result", None) is True
    after = time.time()

    info = _get(storage, "a")
    assert info.state is State.DONE
    assert info.result == b"\x00result"
    assert (info.attempts, info.errors, info.interruptions, info.crashes) == (1, 0, 0, 0)
    assert info.error is None and info.reason is None
    _assert_unleased(info)
    [entry] = info.history
    assert entry["attempt"] == 1
    assert entry["outcome"] == "succeeded"
    assert entry["consumer"] == "c1"
    # A backend may keep history times to ~10 µs (SQLite's JSON prints 15 digits).
    assert before - 0.001 <= float(entry["at"]) <= after + 0.001  # type: ignore[arg-type]
    assert storage.counts() == {(QUEUE, State.DONE): 1}
    assert storage.claim([QUEUE], 10, LEASE, "c1") == []


def test_ack_without_a_result(storage: Storage) -> None:
    enqueue(storage, "a")
    assert storage.ack(claim_one(storage).token, None, None)

    info = _get(storage, "a")
    assert info.state is State.DONE and info.result is None


def test_result_without_ttl_is_kept_forever(storage: Storage) -> None:
    enqueue(storage, "a")
    assert storage.ack(claim_one(storage).token, b"r", None)

    assert storage.expire_results(time.time() + 10**9) == 0
    assert _get(storage, "a").result == b"r"


def test_result_ttl_expires_results(storage: Storage) -> None:
    enqueue(storage, "short", "long", "forever")
    assert storage.ack(claim_one(storage).token, b"s", SHORT)
    assert storage.ack(claim_one(storage).token, b"l", 3600)
    assert storage.ack(claim_one(storage).token, b"f", None)

    assert storage.expire_results(time.time()) == 0
    assert _get(storage, "short").result == b"s"
    time.sleep(SHORT + 0.05)

    assert storage.expire_results(time.time()) == 1
    assert storage.get("short") is None
    assert _get(storage, "long").result == b"l"
    assert storage.expire_results(time.time()) == 0

    assert storage.expire_results(time.time() + 7200) == 1
    assert storage.get("long") is None
    assert _get(storage, "forever").result == b"f"
    assert storage.counts() == {(QUEUE, State.DONE): 1}


def test_expire_results_only_deletes_done_tasks(storage: Storage) -> None:
    ids = one_of_each(storage)

    assert storage.expire_results(time.time() + 10**9) == 0
    assert all(storage.get(task_id) is not None for task_id in ids)


def test_retry_later_schedules_then_promote_queues(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage, consumer="c1")
    eta = time.time() + 3600

    assert storage.retry(lease.token, eta, TRACEBACK) is True

    info = _get(storage, "a")
    assert info.state is State.SCHEDULED
    assert info.eta == pytest.approx(eta)
    assert (info.errors, info.interruptions, info.crashes) == (1, 0, 0)
    assert info.error == TRACEBACK
    assert info.reason is None
    _assert_unleased(info)
    [entry] = info.history
    assert (entry["attempt"], entry["outcome"], entry["consumer"]) == (1, "error", "c1")
    assert "ValueError: boom" in str(entry["detail"])
    assert storage.claim([QUEUE], 10, LEASE, "c1") == []

    assert storage.promote(time.time()) == 0
    assert storage.promote(eta + 1) == 1
    assert _get(storage, "a").state is State.QUEUED
    again = claim_one(storage)
    assert (again.attempt, again.errors) == (2, 1)


def test_retry_due_now_queues_at_once(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage)

    assert storage.retry(lease.token, time.time() - 1, "RuntimeError: again")

    info = _get(storage, "a")
    assert info.state is State.QUEUED
    assert info.errors == 1
    assert info.error == "RuntimeError: again"
    assert storage.promote(time.time()) == 0
    assert claim_one(storage).errors == 1


def test_errors_add_up(storage: Storage) -> None:
    enqueue(storage, "a")
    for n in range(1, 4):
        lease = claim_one(storage)
        assert lease.errors == n - 1
        assert storage.retry(lease.token, time.time(), f"E: error {n}")
        info = _get(storage, "a")
        assert (info.errors, info.error) == (n, f"E: error {n}")


def test_release_queues_at_once_and_keeps_the_checkpoint(storage: Storage) -> None:
    enqueue(storage, "a", "b")
    lease = claim_one(storage, consumer="c1")
    assert storage.checkpoint(lease.token, b"halfway")

    assert storage.release(lease.token, "shutdown") is True

    info = _get(storage, "a")
    assert info.state is State.QUEUED
    assert (info.errors, info.interruptions, info.crashes) == (0, 1, 0)
    assert info.reason is None
    _assert_unleased(info)
    [entry] = info.history
    assert (entry["attempt"], entry["outcome"], entry["consumer"]) == (1, "interrupted", "c1")
    assert "shutdown" in str(entry["detail"])

    # Released: claimable at once, ahead of younger tasks, with its progress.
    again = claim_one(storage, consumer="c2")
    assert (again.id, again.attempt, again.interruptions) == ("a", 2, 1)
    assert again.checkpoint == b"halfway"


def test_release_with_a_delay_schedules_the_task(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage, consumer="c1")
    assert storage.checkpoint(lease.token, b"halfway")

    before = time.time()
    assert storage.release(lease.token, "still running", delay=5.0) is True

    info = _get(storage, "a")
    assert info.state is State.SCHEDULED
    assert info.eta is not None and before + 4.5 <= info.eta <= time.time() + 5.5
    assert (info.errors, info.interruptions, info.crashes) == (0, 1, 0)
    _assert_unleased(info)
    assert storage.claim([QUEUE], 1, LEASE, "c2") == []
    assert storage.release(lease.token, "again") is False  # fenced like every write

    assert storage.promote(time.time() + 6.0) == 1
    again = claim_one(storage, consumer="c2")
    assert (again.id, again.attempt, again.interruptions) == ("a", 2, 1)
    assert again.checkpoint == b"halfway"


def test_dead_records_reason_and_error(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage, consumer="c1")

    assert storage.dead(lease.token, "error", TRACEBACK) is True

    info = _get(storage, "a")
    assert info.state is State.DEAD
    assert info.reason == "error"
    assert info.error == TRACEBACK
    _assert_unleased(info)
    [entry] = info.history
    assert (entry["attempt"], entry["outcome"], entry["consumer"]) == (1, "error", "c1")
    assert "ValueError: boom" in str(entry["detail"])
    assert storage.counts() == {(QUEUE, State.DEAD): 1}
    assert storage.claim([QUEUE], 10, LEASE, "c1") == []
    assert storage.promote(time.time() + 10**9) == 0


def test_dead_without_error_text(storage: Storage) -> None:
    enqueue(storage, "a")
    assert storage.dead(claim_one(storage).token, "unknown task", None)

    info = _get(storage, "a")
    assert (info.state, info.reason, info.error) == (State.DEAD, "unknown task", None)
    assert info.history[-1]["outcome"] == "unknown task"


def test_dead_does_not_count_errors(storage: Storage) -> None:
    enqueue(storage, "a")
    assert storage.dead(claim_one(storage).token, "undecodable", "DecodeError: bad")

    info = _get(storage, "a")
    assert (info.errors, info.interruptions, info.crashes) == (0, 0, 0)


def test_history_records_every_attempt(storage: Storage) -> None:
    enqueue(storage, "a")
    assert storage.release(claim_one(storage, consumer="c1").token, "shutdown")
    assert storage.retry(claim_one(storage, consumer="c2").token, time.time(), TRACEBACK)
    crash(storage, claim_one(storage, consumer="c3", lease_s=SHORT))
    assert storage.ack(claim_one(storage, consumer="c4").token, b"ok", None)

    info = _get(storage, "a")
    assert [(h["attempt"], h["outcome"], h["consumer"]) for h in info.history] == [
        (1, "interrupted", "c1"),
        (2, "error", "c2"),
        (3, "crashed", "c3"),
        (4, "succeeded", "c4"),
    ]
    assert (info.attempts, info.errors, info.interruptions, info.crashes) == (4, 1, 1, 1)
    times = [float(h["at"]) for h in info.history]  # type: ignore[arg-type]
    assert times == sorted(times)


def test_ack_and_claim_acks_then_claims_the_next(storage: Storage) -> None:
    enqueue(storage, "a", "b", "c")
    first = claim_one(storage, consumer="c1")
    acked, leases = storage.ack_and_claim(first.token, b"r", None, [QUEUE], 1, LEASE, "c1")
    assert acked is True
    assert [lease.id for lease in leases] == ["b"]
    assert _get(storage, "a").state is State.DONE and _get(storage, "a").result == b"r"
    assert _get(storage, "b").state is State.RUNNING and _get(storage, "b").consumer == "c1"
    acked, leases = storage.ack_and_claim(leases[0].token, None, None, [QUEUE], 0, LEASE, "c1")
    assert acked is True and leases == []
    assert _get(storage, "c").state is State.QUEUED


def test_ack_and_claim_with_a_stale_token_still_claims(storage: Storage) -> None:
    enqueue(storage, "a", "b")
    stale = claim_one(storage, consumer="c1", lease_s=SHORT)
    crash(storage, stale)
    acked, leases = storage.ack_and_claim(stale.token, b"late", None, [QUEUE], 2, LEASE, "c1")
    assert acked is False
    assert sorted(lease.id for lease in leases) == ["a", "b"]
    assert _get(storage, "a").result is None


def test_ack_many_and_claim_acks_each_with_its_result_and_ttl(storage: Storage) -> None:
    enqueue(storage, "a", "b", "c", "d", "e")
    enqueue(storage, "x", queue="other")
    a, b, c = storage.claim([QUEUE], 3, LEASE, "c1")
    x = claim_one(storage, queue="other", consumer="c1")
    acks = [Ack(a.token, b"ra", None), Ack(x.token, b"rx", None), Ack(b.token, None, SHORT),
            Ack(c.token, b"rc", 3600)]  # fmt: skip

    acked, leases = storage.ack_many_and_claim(acks, [QUEUE], 2, LEASE, "c2")

    assert acked == [True, True, True, True]
    assert [lease.id for lease in leases] == ["d", "e"]
    for task_id, result in (("a", b"ra"), ("x", b"rx"), ("b", None), ("c", b"rc")):
        info = _get(storage, task_id)
        assert (info.state, info.result) == (State.DONE, result)
        _assert_unleased(info)
    for task_id in ("d", "e"):
        info = _get(storage, task_id)
        assert (info.state, info.consumer, info.attempts) == (State.RUNNING, "c2", 1)
    assert storage.counts() == {(QUEUE, State.DONE): 3, (QUEUE, State.RUNNING): 2,
                                ("other", State.DONE): 1}  # fmt: skip

    time.sleep(SHORT + 0.05)
    assert storage.expire_results(time.time()) == 1
    assert storage.get("b") is None
    assert storage.expire_results(time.time() + 7200) == 1
    assert storage.get("c") is None
    assert _get(storage, "a").result == b"ra" and _get(storage, "x").result == b"rx"


def test_ack_many_and_claim_refuses_a_stale_token_and_lands_the_others(storage: Storage) -> None:
    enqueue(storage, "a", "b", "c")
    stale = claim_one(storage, consumer="c1", lease_s=SHORT)
    crash(storage, stale)
    fresh_a, fresh_b = storage.claim([QUEUE], 2, LEASE, "c2")
    assert (fresh_a.id, fresh_b.id) == ("a", "b")
    acks = [Ack(fresh_a.token, b"new", None), Ack(stale.token, b"late", None),
            Ack("not a token", b"?", None), Ack(fresh_b.token, b"b", None)]  # fmt: skip

    acked, leases = storage.ack_many_and_claim(acks, [QUEUE], 1, LEASE, "c2")

    assert acked == [True, False, False, True]
    assert [lease.id for lease in leases] == ["c"]
    info = _get(storage, "a")
    assert (info.state, info.result, info.attempts, info.crashes) == (State.DONE, b"new", 2, 1)
    assert [(h["attempt"], h["outcome"]) for h in info.history] == [
        (1, "crashed"),
        (2, "succeeded"),
    ]
    assert _get(storage, "b").result == b"b"


def test_ack_many_and_claim_lands_a_token_named_twice_once(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage)
    twice = [Ack(lease.token, b"first", None), Ack(lease.token, b"second", None)]

    acked, leases = storage.ack_many_and_claim(twice, [QUEUE], 1, LEASE, "c1")

    assert (acked, leases) == ([True, False], [])
    info = _get(storage, "a")
    assert info.result == b"first" and len(info.history) == 1


def test_ack_many_and_claim_claims_whether_or_not_acks_landed(storage: Storage) -> None:
    enqueue(storage, "a", "b", "c")
    stale = claim_one(storage, consumer="c1", lease_s=SHORT)
    crash(storage, stale)

    acked, leases = storage.ack_many_and_claim([Ack(stale.token, b"late", None)], [QUEUE], 2,
                                               LEASE, "c2")  # fmt: skip

    assert acked == [False]
    assert [lease.id for lease in leases] == ["a", "b"]
    assert _get(storage, "a").result is None
    acked, leases = storage.ack_many_and_claim([], [QUEUE], 5, LEASE, "c2")
    assert acked == [] and [lease.id for lease in leases] == ["c"]
    assert storage.ack_many_and_claim([], [QUEUE], 5, LEASE, "c2") == ([], [])


def test_ack_many_and_claim_with_n_0_claims_nothing(storage: Storage) -> None:
    enqueue(storage, "a", "b", "c", "d")
    a, b = storage.claim([QUEUE], 2, LEASE, "c1")

    acked, leases = storage.ack_many_and_claim(
        [Ack(a.token, b"a", None), Ack(b.token, b"b", 60)], [QUEUE], 0, LEASE, "c1"
    )

    assert (acked, leases) == ([True, True], [])
    assert storage.counts() == {(QUEUE, State.DONE): 2, (QUEUE, State.QUEUED): 2}
    assert storage.ack_many_and_claim([], [QUEUE], 0, LEASE, "c1") == ([], [])
    assert storage.ack_many_and_claim([], [], 3, LEASE, "c1") == ([], [])


def _comparable(info: TaskInfo) -> dict[str, object]:
    """What an ack decides about a task: everything but its id, payload and times."""
    skip = {"id", "payload", "created_at", "updated_at", "history"}
    fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info) if f.name not in skip}
    fields["history"] = [{k: v for k, v in h.items() if k != "at"} for h in info.history]
    return fields


def test_ack_many_and_claim_leaves_what_ack_leaves(storage: Storage) -> None:
    ids = ["single0", "single1", "single2", "many0", "many1", "many2"]
    enqueue(storage, *ids)
    leases = storage.claim([QUEUE], 6, LEASE, "c1")
    assert [lease.id for lease in leases] == ids
    outcomes = [(b"r", None), (None, 60.0), (b"\x00", 3600)]

    before = time.time()
    for lease, (result, ttl) in zip(leases[:3], outcomes, strict=True):
        assert storage.ack(lease.token, result, ttl)
    acks = [Ack(lease.token, r, ttl) for lease, (r, ttl) in zip(leases[3:], outcomes, strict=True)]
    assert storage.ack_many_and_claim(acks, [QUEUE], 1, LEASE, "c1") == ([True] * 3, [])
    after = time.time()

    for i in range(3):
        single, many = _get(storage, f"single{i}"), _get(storage, f"many{i}")
        assert _comparable(many) == _comparable(single)
        [entry] = many.history
        assert set(entry) == set(single.history[0])
        assert before - 0.001 <= float(entry["at"]) <= after + 0.001  # type: ignore[arg-type]
    # Result TTLs as ack keeps them: 60 s, 3600 s and forever, in pairs.
    assert storage.expire_results(time.time() + 30) == 0
    assert storage.expire_results(time.time() + 120) == 2
    assert {storage.get(f"{kind}1") for kind in ("single", "many")} == {None}
    assert storage.expire_results(time.time() + 7200) == 2
    assert storage.expire_results(time.time() + 10**9) == 0
    assert storage.counts() == {(QUEUE, State.DONE): 2}
