"""The settler: every outcome written off the workers' path, acks in groups, successors
claimed with them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from scoter import Scoter
from scoter import signals as sig
from scoter.consumer import attempt
from scoter.consumer.attempt import Outcome
from scoter.consumer.inflight import InFlight
from scoter.consumer.policy import Policy
from scoter.consumer.settler import SHORT_TASK_S, Settler
from scoter.context import TaskContext
from scoter.states import State
from scoter.storage.base import Ack, Lease, NewTask

QUEUE = "q"
WORKERS = 4


class Harness:
    """A settler on a real SQLite storage, delivering to a queue the test reads."""

    def __init__(self, app: Scoter, prefetch: int, writers: int = 1) -> None:
        self.app = app
        app.storage.settle_writers = writers
        self.inflight = InFlight()
        self.claiming = True
        self.settler = Settler(
            Policy(app, "c"), self.inflight, [QUEUE], 30.0, WORKERS, prefetch,
            lambda: self.claiming, self.context,
        )  # fmt: skip
        self.delivered: queue.SimpleQueue[TaskContext] = queue.SimpleQueue()
        self.settler.deliver = self.delivered.put
        self.writes: list[int] = []
        self.most_at_once = 0
        at_once = 0
        lock = threading.Lock()
        storage = app.storage
        write = storage.ack_many_and_claim

        def counted(
            acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer: str
        ) -> tuple[list[bool], list[Lease]]:
            nonlocal at_once
            with lock:
                self.writes.append(len(acks))
                at_once += 1
                self.most_at_once = max(self.most_at_once, at_once)
            threading.Event().wait(0.005)  # acks arriving meanwhile queue up
            try:
                return write(acks, queues, n, lease_s, consumer)
            finally:
                with lock:
                    at_once -= 1

        storage.ack_many_and_claim = counted  # type: ignore[method-assign]
        self.settler.start()

    def claimed(self, n: int, backlog: int) -> list[TaskContext]:
        tasks = [NewTask(f"t{i}", "noop", QUEUE, b"[]") for i in range(n + backlog)]
        self.app.storage.enqueue(tasks)
        leases = self.app.storage.claim([QUEUE], n, 30.0, "c")
        contexts = [self.context(lease) for lease in leases]
        for ctx in contexts:
            self.inflight.add(ctx)
            assert ctx.begin()
        return contexts

    def context(self, lease: Lease, asked: float | None = None) -> TaskContext:
        return attempt.new_context(self.app, lease, 30.0, asked)

    def finish(self, contexts: list[TaskContext], ran_s: float = 0.001) -> None:
        for ctx in contexts:
            self.settler.put(ctx, Outcome.succeeded(None, ran_s))

    def wait_settled(self, contexts: list[TaskContext]) -> None:
        pause = threading.Event()
        for _ in range(500):
            if not any(self.inflight.get(ctx.token) for ctx in contexts):
                return
            pause.wait(0.01)
        raise AssertionError("the settler did not settle every attempt")

    def stop(self) -> None:
        self.settler.stop()


@pytest.fixture
def app(tmp_path: Path) -> Scoter:
    return Scoter("settler", f"sqlite:///{tmp_path}/q.db")


def test_finished_attempts_share_writes_and_their_successors_are_delivered(app: Scoter) -> None:
    harness = Harness(app, prefetch=0)
    contexts = harness.claimed(WORKERS, backlog=WORKERS)

    harness.finish(contexts)
    harness.wait_settled(contexts)
    harness.stop()

    assert sum(harness.writes) == WORKERS and len(harness.writes) < WORKERS
    for ctx in contexts:
        info = app.storage.get(ctx.task_id)
        assert info is not None and info.state is State.DONE
        assert ctx.settled
    delivered = [harness.delivered.get(timeout=1).task_id for _ in range(WORKERS)]
    assert sorted(delivered) == sorted(f"t{i}" for i in range(WORKERS, 2 * WORKERS))
    assert len(harness.inflight) == WORKERS  # the successors, until their workers finish


@pytest.mark.parametrize(("ran_s", "claimed"), [(0.001, 2 * WORKERS), (SHORT_TASK_S * 2, WORKERS)])
def test_short_tasks_are_claimed_ahead_long_ones_are_not(
    app: Scoter, ran_s: float, claimed: int
) -> None:
    harness = Harness(app, prefetch=WORKERS)
    contexts = harness.claimed(WORKERS, backlog=10 * WORKERS)

    harness.finish(contexts, ran_s)
    harness.wait_settled(contexts)
    harness.stop()

    assert len(harness.inflight) == claimed
    assert harness.delivered.qsize() == claimed


def test_a_stopping_consumer_acks_and_claims_nothing(app: Scoter) -> None:
    harness = Harness(app, prefetch=WORKERS)
    contexts = harness.claimed(WORKERS, backlog=WORKERS)
    harness.claiming = False

    harness.finish(contexts)
    harness.wait_settled(contexts)
    harness.stop()

    assert len(harness.inflight) == 0 and harness.delivered.empty()
    assert all(app.storage.get(ctx.task_id).state is State.DONE for ctx in contexts)  # type: ignore[union-attr]


def test_a_stale_ack_is_refused_and_signalled_as_a_lease_loss(app: Scoter) -> None:
    lost: list[str] = []
    app.signals.connect(lambda name, ref, *_: lost.append(ref.id), sig.SIGNAL_LEASE_LOST)
    harness = Harness(app, prefetch=0)
    stale, fresh = harness.claimed(2, backlog=0)
    assert app.storage.release(stale.token, "taken over")

    harness.finish([stale, fresh])
    harness.wait_settled([stale, fresh])
    harness.stop()

    assert lost == [stale.task_id] and stale.lease_lost
    assert app.storage.get(fresh.task_id).state is State.DONE  # type: ignore[union-attr]


def test_two_writers_write_groups_at_once_and_never_claim_past_capacity(app: Scoter) -> None:
    harness = Harness(app, prefetch=WORKERS, writers=2)
    contexts = harness.claimed(WORKERS, backlog=10 * WORKERS)

    for ctx in contexts:  # one at a time, so that the groups overlap
        harness.finish([ctx])
        threading.Event().wait(0.002)
    harness.wait_settled(contexts)
    harness.stop()

    assert harness.most_at_once == 2 and sum(harness.writes) == WORKERS
    assert all(app.storage.get(ctx.task_id).state is State.DONE for ctx in contexts)  # type: ignore[union-attr]
    capacity = 2 * WORKERS
    assert len(harness.inflight) == capacity == harness.delivered.qsize()  # not one more


def test_failures_interruptions_and_bad_messages_are_settled_and_replaced(app: Scoter) -> None:
    @app.task(name="noop", retries=1, retry_delay=60)
    def noop() -> None: ...

    harness = Harness(app, prefetch=0)
    failed, interrupted, bad = harness.claimed(3, backlog=3)

    harness.settler.put(failed, Outcome.failed(ValueError("boom")))
    harness.settler.put(interrupted, Outcome.interrupted("the task raised Interrupt"))
    harness.settler.put(bad, Outcome.undeliverable("undecodable", "payload of 'noop': junk"))
    harness.wait_settled([failed, interrupted, bad])
    harness.stop()

    states = [app.storage.get(ctx.task_id) for ctx in (failed, interrupted, bad)]
    assert [(i.state, i.errors, i.interruptions) for i in states if i] == [
        (State.SCHEDULED, 1, 0),
        (State.RUNNING, 0, 1),
        (State.DEAD, 0, 0),
    ]  # fmt: skip  (the released task, oldest, is claimed again at once as a successor)
    assert states[2] is not None and states[2].reason == "undecodable"
    assert harness.delivered.qsize() == WORKERS  # the freed slots, and the one free before


def test_an_outcome_after_the_consumer_took_the_attempt_back_is_dropped(app: Scoter) -> None:
    harness = Harness(app, prefetch=0)
    (ctx,) = harness.claimed(1, backlog=0)
    harness.claiming = False  # the consumer is stopping
    assert ctx.take_back() is not None
    harness.settler.hand_back(ctx, "consumer shutdown", 0.0)
    harness.settler.put(ctx, Outcome.succeeded(None))  # the worker finished too late
    harness.wait_settled([ctx])
    harness.stop()

    info = app.storage.get(ctx.task_id)
    assert info is not None and (info.state, info.interruptions) == (State.QUEUED, 1)
