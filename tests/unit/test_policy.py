"""An attempt run and settled through the policy: bad input, fencing, budgets, signals, on real
storages."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from scoter import (
    SIGNAL_COMPLETE,
    SIGNAL_DEAD,
    SIGNAL_ERROR,
    SIGNAL_EXECUTING,
    SIGNAL_INTERRUPTED,
    SIGNAL_LEASE_LOST,
    Interrupt,
    LeaseLost,
    Message,
    Scoter,
    State,
    TaskContext,
)
from scoter.storage.base import Lease, NewTask, Storage, TaskInfo

from .attempts import InlineConsumer

LEASE_S = 30.0
"""Long enough never to expire during a test; expiry is simulated with `rescue(future)`."""


def claim(storage: Storage, consumer: str = "c1", queue: str = "default") -> Lease:
    leases = storage.claim([queue], 1, LEASE_S, consumer)
    assert len(leases) == 1, "expected exactly one queued task"
    return leases[0]


def info(storage: Storage, task_id: str) -> TaskInfo:
    found = storage.get(task_id)
    assert found is not None
    return found


def raw_enqueue(storage: Storage, name: str, payload: bytes) -> str:
    """Store a task as a foreign or broken producer would, bypassing the app's encoder."""
    task_id = uuid.uuid4().hex
    assert storage.enqueue([NewTask(task_id, name, "default", payload)]) == 1
    return task_id


@pytest.fixture
def app(storage: Storage) -> Scoter:
    return Scoter("unit", storage)


@pytest.fixture
def runner(app: Scoter) -> InlineConsumer:
    return InlineConsumer(app, "c1")


# -- bad input goes dead with a reason, and the runner keeps working --------------------------


def test_unknown_task_goes_dead_naming_the_task(
    app: Scoter, runner: InlineConsumer, recorder: Any
) -> None:
    @app.task
    def known() -> int:
        return 1

    app.signal()(recorder)
    ghost = app.enqueue(Message("billing.ghost", (1,)))
    runner.execute(claim(app.storage))

    dead = info(app.storage, ghost.id)
    assert dead.state is State.DEAD
    assert dead.reason == "unknown task"
    assert dead.error is not None
    assert "'billing.ghost'" in dead.error
    assert "known" in dead.error
    assert recorder.names == ["enqueued", SIGNAL_DEAD]
    assert recorder.extras(SIGNAL_DEAD) == [("unknown task",)]

    ok = known()
    runner.execute(claim(app.storage))
    assert ok.get() == 1


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\xff\xfe garbage",
        b"",
        b"[1, 2, 3]",
        b'{"kwargs": {}}',
        b'{"args": 5, "kwargs": {}}',
        b'{"args": [], "kwargs": [1]}',
        b'{"args": [{"__scoter__": "no-such-type", "v": 1}]}',
    ],
)
def test_undecodable_payload_goes_dead(app: Scoter, runner: InlineConsumer, payload: bytes) -> None:
    ran: list[Any] = []

    @app.task
    def job(*args: Any, **kwargs: Any) -> None:
        ran.append((args, kwargs))

    task_id = raw_enqueue(app.storage, "job", payload)
    runner.execute(claim(app.storage))

    dead = info(app.storage, task_id)
    assert (dead.state, dead.reason) == (State.DEAD, "undecodable")
    assert dead.error is not None and "'job'" in dead.error
    assert ran == []
    assert dead.history[-1]["outcome"] == "undecodable"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"args": [{"__scoter__": "decimal", "v": "one"}], "kwargs": {}}',
        b'{"args": [{"__scoter__": "uuid", "v": 1}], "kwargs": {}}',
    ],
)
def test_payload_with_a_malformed_tag_goes_dead(
    app: Scoter, runner: InlineConsumer, payload: bytes
) -> None:
    @app.task
    def job(*args: Any) -> None: ...

    task_id = raw_enqueue(app.storage, "job", payload)
    runner.execute(claim(app.storage))
    dead = info(app.storage, task_id)
    assert (dead.state, dead.reason) == (State.DEAD, "undecodable")


def test_signed_app_refuses_an_unsigned_message(storage: Storage, recorder: Any) -> None:
    consumer_app = Scoter("unit", storage, secret_keys=["k1, a key of 16+ bytes"])
    producer_app = Scoter("unit", storage)
    ran: list[int] = []

    for app in (consumer_app, producer_app):

        @app.task(name="job")
        def job(x: int) -> None:
            ran.append(x)

    consumer_app.signal(SIGNAL_DEAD)(recorder)
    result = producer_app.enqueue(Message("job", (1,)))
    InlineConsumer(consumer_app, "c1").execute(claim(storage))

    dead = info(storage, result.id)
    assert (dead.state, dead.reason) == (State.DEAD, "undecodable")
    assert dead.error is not None and "not signed" in dead.error
    assert ran == []
    assert recorder.extras(SIGNAL_DEAD) == [("undecodable",)]


def test_signed_app_refuses_a_message_signed_with_another_key(storage: Storage) -> None:
    consumer_app = Scoter("unit", storage, secret_keys=["ours: a key of 16+ bytes"])
    forger_app = Scoter("unit", storage, secret_keys=["theirs: a key of 16+ bytes"])
    for app in (consumer_app, forger_app):
        app.task(name="job")(lambda: None)

    result = forger_app.enqueue(Message("job"))
    InlineConsumer(consumer_app, "c1").execute(claim(storage))
    dead = info(storage, result.id)
    assert (dead.state, dead.reason) == (State.DEAD, "undecodable")
    assert dead.error is not None and "signature" in dead.error


def test_signed_app_runs_messages_signed_with_a_retired_key(storage: Storage) -> None:
    old, new = "old: a key of 16+ bytes", "new: a key of 16+ bytes"
    old_producer = Scoter("unit", storage, secret_keys=[old])
    consumer_app = Scoter("unit", storage, secret_keys=[new, old])
    for app in (old_producer, consumer_app):

        @app.task(name="add")
        def add(a: int, b: int) -> int:
            return a + b

    result = old_producer.enqueue(Message("add", (2, 3)))
    InlineConsumer(consumer_app, "c1").execute(claim(storage))
    assert consumer_app.result(result.id).get() == 5


# -- results that cannot be stored ------------------------------------------------------------


def test_unserializable_return_value_is_an_error(
    app: Scoter, runner: InlineConsumer, recorder: Any
) -> None:
    app.signal()(recorder)

    @app.task
    def returns_object() -> object:
        return object()

    result = returns_object()
    runner.execute(claim(app.storage))

    dead = info(app.storage, result.id)
    assert (dead.state, dead.reason) == (State.DEAD, "error")
    assert dead.error is not None and "cannot be stored" in dead.error
    assert SIGNAL_COMPLETE not in recorder.names
    ((error,),) = recorder.extras(SIGNAL_ERROR)
    assert isinstance(error, TypeError)


def test_unserializable_return_value_spends_a_retry(app: Scoter, runner: InlineConsumer) -> None:
    @app.task(retries=1)
    def returns_object() -> object:
        return object()

    result = returns_object()
    runner.execute(claim(app.storage))
    retried = info(app.storage, result.id)
    assert retried.state is State.QUEUED
    assert retried.errors == 1
    assert retried.history[-1]["outcome"] == "error"


def test_result_ttl_zero_stores_no_result(storage: Storage) -> None:
    app = Scoter("unit", storage, result_ttl=0)

    @app.task
    def value() -> int:
        return 42

    result = value()
    InlineConsumer(app, "c1").execute(claim(storage))
    assert info(storage, result.id).result is None


# -- fencing: a stale attempt's writes are refused ---------------------------------------------


def lose_lease(storage: Storage) -> Lease:
    """Claim a task as c1, let the lease "expire" (rescue in the future), re-claim as c2.

    Returns c1's stale lease; the task is running under c2's lease now.
    """
    stale = claim(storage, "c1")
    rescued = storage.rescue(time.time() + 10 * LEASE_S)
    assert [(r.id, r.state) for r in rescued] == [(stale.id, State.QUEUED)]
    fresh = claim(storage, "c2")
    assert fresh.id == stale.id and fresh.token != stale.token
    return stale


def test_stale_ack_is_refused_counted_and_signalled(app: Scoter, recorder: Any) -> None:
    app.signal()(recorder)

    @app.task(context=True)
    def attempt_number(ctx: TaskContext) -> int:
        return ctx.attempt

    result = attempt_number()
    stale = lose_lease(app.storage)
    old_runner = InlineConsumer(app, "c1")
    ctx = old_runner.context(stale)
    old_runner.execute(stale, ctx)

    assert old_runner.stale_writes == 1
    assert ctx.lease_lost
    assert SIGNAL_COMPLETE not in recorder.names
    lost = [(ref.id, extra) for name, ref, extra in recorder.calls if name == SIGNAL_LEASE_LOST]
    assert lost == [(result.id, ("ack",))]
    running = info(app.storage, result.id)
    assert (running.state, running.consumer, running.result) == (State.RUNNING, "c2", None)
    assert running.attempts == 2


def test_the_new_owner_settles_after_a_stale_ack(app: Scoter) -> None:
    @app.task(context=True)
    def attempt_number(ctx: TaskContext) -> int:
        return ctx.attempt

    result = attempt_number()
    stale = claim(app.storage, "c1")
    app.storage.rescue(time.time() + 10 * LEASE_S)
    fresh = claim(app.storage, "c2")
    new_runner, old_runner = InlineConsumer(app, "c2"), InlineConsumer(app, "c1")

    old_runner.execute(stale)
    new_runner.execute(fresh)

    assert (old_runner.stale_writes, new_runner.stale_writes) == (1, 0)
    assert result.get() == 2
    outcomes = [(h["outcome"], h["consumer"]) for h in info(app.storage, result.id).history]
    assert outcomes == [("crashed", "c1"), ("succeeded", "c2")]


def test_stale_retry_is_refused(app: Scoter, recorder: Any) -> None:
    app.signal(SIGNAL_LEASE_LOST)(recorder)

    @app.task(retries=3)
    def boom() -> None:
        raise ValueError("boom")

    result = boom()
    stale = lose_lease(app.storage)
    old_runner = InlineConsumer(app, "c1")
    old_runner.execute(stale)
    assert old_runner.stale_writes == 1
    assert recorder.extras(SIGNAL_LEASE_LOST) == [("retry",)]
    running = info(app.storage, result.id)
    assert (running.state, running.errors, running.consumer) == (State.RUNNING, 0, "c2")


def test_stale_checkpoint_raises_lease_lost_and_keeps_the_owner_state(app: Scoter) -> None:
    @app.task(context=True)
    def progress(ctx: TaskContext) -> None: ...

    progress()
    stale = claim(app.storage, "c1")
    app.storage.rescue(time.time() + 10 * LEASE_S)
    fresh = claim(app.storage, "c2")
    owner = InlineConsumer(app, "c2").context(fresh)
    owner.checkpoint({"step": "owner"})

    old_ctx = InlineConsumer(app, "c1").context(stale)
    with pytest.raises(LeaseLost):
        old_ctx.checkpoint({"step": "stale"})
    assert old_ctx.lease_lost and old_ctx.stop_requested

    assert InlineConsumer(app, "c2").interrupt(owner, "test")
    assert claim(app.storage, "c3").checkpoint == app.serializer.dumps({"step": "owner"})


def test_stale_release_is_refused(app: Scoter) -> None:
    app.task(name="job")(lambda: None)
    app.enqueue(Message("job"))
    lease = claim(app.storage)
    runner = InlineConsumer(app, "c1")
    ctx = runner.context(lease)
    assert runner.interrupt(ctx, "consumer shutdown") is True
    assert runner.interrupt(ctx, "consumer shutdown") is False
    assert runner.stale_writes == 1
    assert info(app.storage, lease.id).interruptions == 1


# -- interruptions ----------------------------------------------------------------------------


def test_interrupt_releases_until_max_interruptions_then_dead(
    app: Scoter, runner: InlineConsumer, recorder: Any
) -> None:
    app.signal(SIGNAL_INTERRUPTED, SIGNAL_DEAD)(recorder)

    @app.task(max_interruptions=2, retries=5)
    def never_finishes() -> None:
        raise Interrupt()

    result = never_finishes()
    for expected in (1, 2):
        runner.execute(claim(app.storage))
        released = info(app.storage, result.id)
        assert (released.state, released.interruptions, released.errors) == (
            State.QUEUED, expected, 0
        )  # fmt: skip

    runner.execute(claim(app.storage))
    dead = info(app.storage, result.id)
    assert (dead.state, dead.reason) == (State.DEAD, "interrupted")
    assert dead.error is not None and "3 times" in dead.error
    assert dead.interruptions == 3
    assert recorder.names == [SIGNAL_INTERRUPTED, SIGNAL_INTERRUPTED, SIGNAL_DEAD]
    assert recorder.extras(SIGNAL_DEAD) == [("interrupted",)]
    assert runner.stale_writes == 0


def test_max_interruptions_zero_goes_dead_at_the_first_interrupt(
    app: Scoter, runner: InlineConsumer
) -> None:
    @app.task(max_interruptions=0)
    def stop_now() -> None:
        raise Interrupt()

    result = stop_now()
    runner.execute(claim(app.storage))
    assert info(app.storage, result.id).reason == "interrupted"


def test_shutdown_release_is_counted_as_an_interruption(app: Scoter, recorder: Any) -> None:
    app.signal(SIGNAL_INTERRUPTED)(recorder)

    @app.task(max_interruptions=1)
    def long() -> None: ...

    result = long()
    runner = InlineConsumer(app, "c1")
    assert runner.interrupt(runner.context(claim(app.storage)), "consumer shutdown")
    assert info(app.storage, result.id).history[-1]["detail"] == "consumer shutdown"
    assert runner.interrupt(runner.context(claim(app.storage)), "consumer shutdown")
    dead = info(app.storage, result.id)
    assert (dead.state, dead.reason, dead.interruptions) == (State.DEAD, "interrupted", 2)
    assert recorder.names == [SIGNAL_INTERRUPTED]


# -- errors -----------------------------------------------------------------------------------


def test_error_with_retry_delay_is_scheduled(app: Scoter, runner: InlineConsumer) -> None:
    @app.task(retries=2, retry_delay=60.0)
    def boom() -> None:
        raise ValueError("boom")

    result = boom()
    before = time.time()
    runner.execute(claim(app.storage))
    retried = info(app.storage, result.id)
    assert retried.state is State.SCHEDULED
    assert retried.errors == 1
    assert retried.eta is not None and before + 59 <= retried.eta <= time.time() + 61
    assert retried.error is not None and "ValueError: boom" in retried.error


def test_executing_signal_carries_decoded_arguments(
    app: Scoter, runner: InlineConsumer, recorder: Any
) -> None:
    app.signal(SIGNAL_EXECUTING)(recorder)

    @app.task
    def job(a: tuple[int, int], b: bytes = b"") -> None: ...

    result = job((1, 2), b=b"\x00")
    runner.execute(claim(app.storage))
    ((_, ref, _),) = recorder.calls
    assert (ref.id, ref.name, ref.queue, ref.attempt) == (result.id, "job", "default", 1)
    assert (ref.args, ref.kwargs) == (((1, 2),), {"b": b"\x00"})


def test_the_final_error_is_counted(app: Scoter, runner: InlineConsumer) -> None:
    @app.task(retries=1)
    def boom() -> None:
        raise ValueError("boom")

    result = boom()
    runner.execute(claim(app.storage))
    runner.execute(claim(app.storage))
    dead = info(app.storage, result.id)
    assert dead.reason == "error"
    assert dead.errors == 2
