"""heartbeat: extends live leases in one call, reports the tokens no longer held."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from scoter.states import State
from scoter.storage.base import Lease, Storage

from .helpers import LEASE, QUEUE, SETTLES, SHORT, claim_one, crash, enqueue, wait_expired


def test_heartbeat_extends_leases_so_rescue_leaves_them(storage: Storage) -> None:
    enqueue(storage, "beating", "silent")
    beating, silent = storage.claim([QUEUE], 2, SHORT, "c1")

    before = time.time()
    assert storage.heartbeat([beating.token], LEASE) == set()
    after = time.time()
    wait_expired(beating, silent)

    assert [r.id for r in storage.rescue(time.time())] == ["silent"]
    info = storage.get("beating")
    assert info is not None and info.lease_expires is not None
    assert info.state is State.RUNNING
    assert before + LEASE <= info.lease_expires <= after + LEASE
    assert storage.ack(beating.token, b"ok", None)


def test_heartbeat_extends_many_leases_in_one_call(storage: Storage) -> None:
    enqueue(storage, *(f"t{i}" for i in range(10)))
    leases = storage.claim([QUEUE], 10, SHORT, "c1")

    assert storage.heartbeat((lease.token for lease in leases), LEASE) == set()
    wait_expired(*leases)

    assert storage.rescue(time.time()) == []
    assert storage.counts() == {(QUEUE, State.RUNNING): 10}


def test_heartbeat_sets_the_expiry_to_now_plus_lease(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = claim_one(storage, lease_s=3600)

    assert storage.heartbeat([lease.token], 1.0) == set()
    info = storage.get("a")
    assert info is not None and info.lease_expires is not None
    assert info.lease_expires <= time.time() + 1.0


def test_heartbeat_of_nothing(storage: Storage) -> None:
    assert storage.heartbeat([], LEASE) == set()


def _acked(s: Storage, lease: Lease) -> None:
    assert SETTLES["ack"](s, lease.token)


def _retried(s: Storage, lease: Lease) -> None:
    assert SETTLES["retry"](s, lease.token)


def _released(s: Storage, lease: Lease) -> None:
    assert SETTLES["release"](s, lease.token)


def _dead(s: Storage, lease: Lease) -> None:
    assert SETTLES["dead"](s, lease.token)


def _rescued(s: Storage, lease: Lease) -> None:
    crash(s, lease)


def _rescued_and_claimed_again(s: Storage, lease: Lease) -> None:
    crash(s, lease)
    claim_one(s, consumer="c2")


def _released_and_claimed_again(s: Storage, lease: Lease) -> None:
    assert s.release(lease.token, "shutdown")
    claim_one(s, consumer="c2")


def _purged(s: Storage, lease: Lease) -> None:
    assert s.purge(State.RUNNING, [lease.id]) == 1


LOSSES: dict[str, Callable[[Storage, Lease], None]] = {
    "acked": _acked,
    "retried": _retried,
    "released": _released,
    "dead": _dead,
    "rescued": _rescued,
    "rescued-and-claimed-again": _rescued_and_claimed_again,
    "released-and-claimed-again": _released_and_claimed_again,
    "purged": _purged,
}


@pytest.mark.parametrize("lose", LOSSES.values(), ids=LOSSES.keys())
def test_heartbeat_reports_tokens_no_longer_held(
    storage: Storage, lose: Callable[[Storage, Lease], None]
) -> None:
    enqueue(storage, "lost", "held")
    lost = claim_one(storage, lease_s=SHORT)
    held = claim_one(storage)
    lose(storage, lost)
    new_owner = [i for i in storage.list_tasks(State.RUNNING) if i.id == "lost"]

    assert storage.heartbeat([lost.token, held.token, "unknown"], 3600) == {lost.token, "unknown"}

    # The held lease was extended; a new owner's lease was not touched by the stale token.
    info = storage.get("held")
    assert info is not None and info.lease_expires is not None
    assert info.lease_expires > time.time() + 3000
    for before in new_owner:
        assert storage.get(before.id) == before


def test_heartbeat_reports_unknown_tokens(storage: Storage) -> None:
    assert storage.heartbeat(["nope", "also-nope"], LEASE) == {"nope", "also-nope"}
