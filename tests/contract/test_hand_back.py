"""`hand_back`: a consumer that reconnects gives back the leases a claim with a lost reply gave
it, which it never ran — charged nothing, claimable at once, the stale tokens fenced."""

from __future__ import annotations

from scoter.states import State
from scoter.storage.base import HANDED_BACK, UNSTARTED, Ack, Storage

from .helpers import LEASE, QUEUE, enqueue


def test_leases_the_consumer_does_not_keep_go_back_charged_nothing(storage: Storage) -> None:
    enqueue(storage, "a", "b", "c")
    leases = storage.claim([QUEUE], 3, LEASE, "c1")
    kept, *lost = leases

    assert storage.hand_back("c1", [QUEUE], [kept.token]) == 2

    for lease in lost:
        info = storage.get(lease.id)
        assert info is not None
        assert (info.state, info.errors, info.interruptions, info.crashes, info.suspect) == (
            State.QUEUED, 0, 0, 0, False,
        )  # fmt: skip
        assert info.consumer is None and info.lease_expires is None
        entry = info.history[-1]
        assert (entry["outcome"], entry["detail"], entry["consumer"]) == (
            HANDED_BACK, UNSTARTED, "c1",
        )  # fmt: skip
    assert storage.heartbeat([kept.token], LEASE) == set()  # none lost
    assert not storage.ack(lost[0].token, None, None)  # the stale lease is fenced
    again = storage.claim([QUEUE], 3, LEASE, "c2")
    assert sorted(lease.id for lease in again) == sorted(lease.id for lease in lost)


def test_other_consumers_and_queues_keep_their_leases(storage: Storage) -> None:
    enqueue(storage, "mine", "theirs")
    enqueue(storage, "elsewhere", queue="other")
    mine = storage.claim([QUEUE], 1, LEASE, "c1")[0]
    theirs = storage.claim([QUEUE], 1, LEASE, "c2")[0]
    elsewhere = storage.claim(["other"], 1, LEASE, "c1")[0]

    assert storage.hand_back("c1", [QUEUE], []) == 1

    assert storage.get(mine.id).state is State.QUEUED  # type: ignore[union-attr]
    assert storage.heartbeat([theirs.token, elsewhere.token], LEASE) == set()  # none lost
    assert storage.hand_back("c1", [QUEUE], []) == 0


def test_a_settled_lease_is_not_handed_back(storage: Storage) -> None:
    enqueue(storage, "a")
    lease = storage.claim([QUEUE], 1, LEASE, "c1")[0]
    assert storage.ack_many_and_claim([Ack(lease.token, b"1", None)], [QUEUE], 0, LEASE, "c1")
    assert storage.hand_back("c1", [QUEUE], []) == 0
    assert storage.get("a").state is State.DONE  # type: ignore[union-attr]
