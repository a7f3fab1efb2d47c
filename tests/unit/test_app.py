"""The Scoter facade: registering, enqueueing, immediate mode, results, signals, context."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from scoter import (
    SIGNAL_COMPLETE,
    SIGNAL_DEAD,
    SIGNAL_ENQUEUED,
    SIGNAL_ERROR,
    SIGNAL_EXECUTING,
    SIGNAL_INTERRUPTED,
    SIGNAL_RETRYING,
    ConfigurationError,
    Interrupt,
    Message,
    Result,
    ResultTimeout,
    Scoter,
    State,
    Task,
    TaskContext,
    TaskFailed,
    current_context,
)
from scoter.serializers import PickleSerializer, Signer

from .attempts import InlineConsumer

T = TypeVar("T")


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storage URL of each embedded backend, fresh for the test."""
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture
def app(url: str) -> Scoter:
    """A producer-only app: enqueued tasks wait in the storage."""
    return Scoter("unit", url)


@pytest.fixture
def plain() -> Scoter:
    """A producer-only app on memory, for tests where the backend does not matter."""
    return Scoter("unit", "memory://")


@pytest.fixture
def immediate(url: str) -> Scoter:
    """An app in immediate mode: tasks run in this thread when enqueued."""
    return Scoter("unit", url, immediate=True)


def finishes(call: Callable[[], T], seconds: float = 10.0) -> T:
    """`call()`, failing the test instead of hanging when it does not return in `seconds`."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # re-raised in the test's thread
            outcome.append((False, exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        pytest.fail(f"did not return within {seconds} s")
    ok, value = outcome[0]
    if not ok:
        raise value
    return cast(T, value)


def bounded(calls: list[Any], limit: int = 30) -> None:
    """Stop a task that runs far more often than its budgets allow (instead of looping)."""
    if len(calls) > limit:
        pytest.fail(f"the task ran {len(calls)} times: a budget is not applied")


def run_one(app: Scoter, consumer_id: str = "unit-consumer") -> None:
    """Claim one queued task and run it, as a consumer would."""
    leases = app.storage.claim([app.default_queue], 1, 30.0, consumer_id)
    assert leases, "nothing was queued"
    InlineConsumer(app, consumer_id).execute(leases[0])


# -- registering tasks ------------------------------------------------------------------------


def test_bare_decorator_registers_under_the_function_name(plain: Scoter) -> None:
    @plain.task
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, Task)
    assert plain.tasks == {"add": add}
    assert add.name == "add"
    assert add.queue == "default"
    assert add.priority == 0
    assert add.policy.retries == 0
    assert add.context is False
    assert add.__doc__ == "Add two numbers."
    assert add.__name__ == "add"


def test_decorator_with_options(plain: Scoter) -> None:
    @plain.task(name="mail.send", queue="emails", priority=5, retries=3, retry_delay=2.0,
              max_crashes=1, max_interruptions=4, context=True)  # fmt: skip
    def send(to: str, ctx: TaskContext) -> None: ...

    assert plain.tasks["mail.send"] is send
    assert "send" not in plain.tasks
    assert (send.queue, send.priority, send.context) == ("emails", 5, True)
    assert (send.policy.retries, send.policy.retry_delay) == (3, 2.0)
    assert (send.policy.max_crashes, send.policy.max_interruptions) == (1, 4)


def test_tasks_take_the_app_default_queue() -> None:
    app = Scoter("unit", "memory://", default_queue="main")

    @app.task
    def f() -> None: ...

    assert f.queue == "main"
    assert f().state is State.QUEUED
    assert app.storage.counts() == {("main", State.QUEUED): 1}


def test_two_functions_with_one_task_name_is_an_error(plain: Scoter) -> None:
    @plain.task(name="job")
    def first() -> None: ...

    with pytest.raises(ConfigurationError, match="job"):

        @plain.task(name="job")
        def second() -> None: ...

    assert plain.tasks["job"] is first


def test_registering_the_same_function_again_is_allowed(plain: Scoter) -> None:
    """What a module reload does: the new registration replaces the old one."""

    def make() -> Task[[], int]:
        def job() -> int:
            return 1

        return plain.task(job)

    first, second = make(), make()
    assert plain.tasks["job"] is second
    assert first is not second


def test_same_function_name_in_two_modules_is_an_error(plain: Scoter) -> None:
    namespace_a: dict[str, Any] = {"__name__": "billing.tasks"}
    namespace_b: dict[str, Any] = {"__name__": "shipping.tasks"}
    exec("def process():\n    return 'billing'", namespace_a)
    exec("def process():\n    return 'shipping'", namespace_b)
    plain.task(namespace_a["process"])
    with pytest.raises(ConfigurationError, match="process"):
        plain.task(namespace_b["process"])


# -- enqueueing -------------------------------------------------------------------------------


def test_calling_a_task_enqueues_it(app: Scoter) -> None:
    @app.task
    def add(a: int, b: int = 0) -> int:
        return a + b

    result = add(1, b=2)
    assert isinstance(result, Result)
    assert result.state is State.QUEUED
    assert not result.ready()
    info = app.storage.get(result.id)
    assert info is not None
    assert (info.name, info.queue) == ("add", "default")
    assert app.decode_message(info.payload) == ((1,), {"b": 2})


def test_get_of_a_task_not_yet_run_returns_none_at_once(app: Scoter) -> None:
    @app.task
    def f() -> int:
        return 1

    result = f()
    assert finishes(result.get) is None
    assert result.state is State.QUEUED


def test_blocking_get_times_out(app: Scoter) -> None:
    @app.task
    def f() -> int:
        return 1

    result = f()
    with pytest.raises(ResultTimeout, match=result.id):
        result.get(blocking=True, timeout=0.05)


def test_result_of_an_unknown_id(app: Scoter) -> None:
    result = app.result("no-such-id")
    assert result.state is None
    assert result.get() is None
    assert not result.ready()


def test_schedule_with_delay_is_scheduled(app: Scoter) -> None:
    @app.task
    def f(x: int) -> int:
        return x

    before = time.time()
    seconds = f.schedule((1,), delay=60)
    delta = f.schedule(kwargs={"x": 2}, delay=dt.timedelta(minutes=5))
    assert seconds.state is State.SCHEDULED
    assert delta.state is State.SCHEDULED
    first, second = app.storage.get(seconds.id), app.storage.get(delta.id)
    assert first is not None and second is not None
    assert first.eta is not None and before + 59 <= first.eta <= time.time() + 61
    assert second.eta is not None and before + 299 <= second.eta <= time.time() + 301
    assert app.decode_message(second.payload) == ((), {"x": 2})


def test_schedule_with_an_aware_eta_is_scheduled_at_that_time(app: Scoter) -> None:
    @app.task
    def f() -> None: ...

    eta = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    result = f.schedule(eta=eta, id="fixed-id")
    assert result.id == "fixed-id"
    assert result.state is State.SCHEDULED
    info = app.storage.get("fixed-id")
    assert info is not None and info.eta == pytest.approx(eta.timestamp())


def test_schedule_in_the_past_is_queued(app: Scoter) -> None:
    @app.task
    def f() -> None: ...

    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    assert f.schedule(eta=past).state is State.QUEUED
    assert f.schedule(eta=time.time() - 5).state is State.QUEUED


def test_schedule_refuses_both_delay_and_eta(plain: Scoter) -> None:
    """(A naive eta is read as local time: tests/unit/test_time.py.)"""

    @plain.task
    def f() -> None: ...

    with pytest.raises(ValueError, match="delay or eta"):
        f.schedule(delay=1, eta=time.time() + 1)
    assert plain.storage.counts() == {}


def test_map_enqueues_one_run_per_argument_list(app: Scoter) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    results = add.map([(1, 2), [3, 4], (5, 6)])
    assert len(results) == 3
    assert len({r.id for r in results}) == 3
    assert all(r.state is State.QUEUED for r in results)
    payloads = [app.storage.get(r.id).payload for r in results]  # type: ignore[union-attr]
    assert [app.decode_message(p)[0] for p in payloads] == [(1, 2), (3, 4), (5, 6)]


def test_signature_then_enqueue(app: Scoter) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    message = add.s(1, b=2)
    assert isinstance(message, Message)
    assert (message.task, message.args, message.kwargs) == ("add", (1,), {"b": 2})
    result = app.enqueue(message)
    assert result.id == message.id
    assert result.state is State.QUEUED
    direct = app.enqueue(add, 3, 4)
    assert direct.state is State.QUEUED
    run_one(app)
    run_one(app)
    assert result.get() == 3
    assert direct.get() == 7


def test_task_ids_are_version_4_uuids_in_hex(plain: Scoter) -> None:
    @plain.task
    def work() -> None: ...

    ids = [work().id, work.s().id, work.schedule(delay=60).id, work.map([()])[0].id]
    assert len(set(ids)) == 4
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert (parsed.hex, parsed.version, parsed.variant) == (task_id, 4, uuid.RFC_4122)


def test_calling_a_task_stores_and_signals_what_enqueueing_its_message_does(
    plain: Scoter, recorder: Any
) -> None:
    plain.signal(SIGNAL_ENQUEUED)(recorder)

    @plain.task(queue="emails", priority=3, max_crashes=5)
    def send(to: str, cc: list[str] | None = None) -> None: ...

    called = plain.storage.get(send("a@x", cc=["b@x"]).id)
    sent = plain.storage.get(plain.enqueue(send.s("a@x", cc=["b@x"])).id)
    assert called is not None and sent is not None
    fields = ("name", "queue", "state", "priority", "eta", "max_crashes", "payload")
    assert [getattr(called, f) for f in fields] == [getattr(sent, f) for f in fields]
    assert (called.queue, called.priority, called.max_crashes) == ("emails", 3, 5)
    refs = [ref for _, ref, _ in recorder.calls]
    assert [r.id for r in refs] == [called.id, sent.id]
    assert {(r.name, r.queue, r.args, str(r.kwargs)) for r in refs} == {
        ("send", "emails", ("a@x",), "{'cc': ['b@x']}")
    }


def test_a_call_without_arguments_follows_the_app_serializer_and_signer(plain: Scoter) -> None:
    @plain.task
    def work() -> None: ...

    def payload() -> bytes:
        info = plain.storage.get(work().id)
        assert info is not None
        return info.payload

    plain_json = payload()
    assert json.loads(plain_json) == {"args": [], "kwargs": {}}
    assert payload() == plain_json
    for key in ("a key of 16 bytes", "another key, longer"):
        plain.signer = Signer(key)
        assert Signer(key).verify_task(payload())[1] == plain_json
    plain.serializer, plain.signer = PickleSerializer(), None
    assert pickle.loads(payload()) == {"args": [], "kwargs": {}}


def test_a_custom_serializer_encodes_every_call(plain: Scoter) -> None:
    class Numbered:
        """Bytes that differ on every call: nothing may be reused."""

        calls = 0

        def dumps(self, value: Any) -> bytes:
            self.calls += 1
            return json.dumps([self.calls, value]).encode()

        def loads(self, data: bytes) -> Any:
            return json.loads(data)[1]

    plain.serializer = Numbered()

    @plain.task
    def work() -> None: ...

    payloads = [plain.storage.get(r.id).payload for r in (work(), work())]  # type: ignore[union-attr]
    assert [json.loads(p)[0] for p in payloads] == [1, 2]


def test_call_local_runs_the_function_without_the_queue(plain: Scoter) -> None:
    @plain.task
    def add(a: int, b: int) -> int:
        return a + b

    assert add.call_local(2, b=3) == 5
    assert plain.storage.counts() == {}


def test_enqueued_task_runs_with_its_arguments_on_a_runner(app: Scoter) -> None:
    @app.task
    def describe(when: dt.date, tags: set[str], pair: tuple[int, int]) -> dict[str, Any]:
        return {"when": when, "tags": tags, "pair": pair}

    result = describe(dt.date(2024, 1, 2), {"a", "b"}, pair=(1, 2))
    run_one(app)
    assert result.state is State.DONE
    assert result.ready()
    assert result.get() == {"when": dt.date(2024, 1, 2), "tags": {"a", "b"}, "pair": (1, 2)}


# -- immediate mode ---------------------------------------------------------------------------


def test_immediate_mode_defaults_to_memory() -> None:
    assert Scoter(immediate=True).storage.url == "memory://"


def test_immediate_mode_runs_the_task_on_enqueue(immediate: Scoter) -> None:
    @immediate.task
    def add(a: int, b: int) -> int:
        return a + b

    result = add(2, 3)
    assert result.state is State.DONE
    assert result.get() == 5
    assert result.get(blocking=True, timeout=1) == 5


def test_immediate_task_returning_none_does_not_hang(immediate: Scoter) -> None:
    @immediate.task
    def nothing() -> None:
        return None

    result = nothing()
    assert finishes(lambda: result.get(blocking=True, timeout=1)) is None
    assert result.state is State.DONE


def test_immediate_erroring_task_retries_then_dies_with_its_traceback(immediate: Scoter) -> None:
    calls: list[int] = []

    @immediate.task(retries=2)
    def flaky(n: int) -> None:
        calls.append(n)
        bounded(calls)
        raise ZeroDivisionError(f"cannot divide {n}")

    result = flaky(7)
    assert calls == [7, 7, 7]
    assert result.state is State.DEAD
    with pytest.raises(TaskFailed) as info:
        result.get(blocking=True, timeout=1)
    failed = info.value
    assert failed.task_id == result.id
    assert failed.reason == "error"
    assert failed.error is not None
    assert "Traceback (most recent call last)" in failed.error
    assert "in flaky" in failed.error
    assert "ZeroDivisionError: cannot divide 7" in failed.error
    assert "ZeroDivisionError" in str(failed)
    stored = immediate.storage.get(result.id)
    assert stored is not None
    assert stored.attempts == 3
    assert [h["outcome"] for h in stored.history] == ["error", "error", "error"]


def test_immediate_scheduled_task_waits(immediate: Scoter) -> None:
    ran: list[int] = []

    @immediate.task
    def later() -> None:
        ran.append(1)

    result = later.schedule(delay=3600)
    assert result.state is State.SCHEDULED
    assert result.get() is None
    assert ran == []


def test_task_enqueued_from_a_task_runs_too(immediate: Scoter) -> None:
    @immediate.task
    def child(x: int) -> int:
        return x * 2

    @immediate.task
    def parent(x: int) -> str:
        return child(x).id

    child_id = parent(21).get()
    assert immediate.result(child_id).get() == 42


# -- signals ----------------------------------------------------------------------------------


def test_signal_receivers_see_the_success_sequence(immediate: Scoter, recorder: Any) -> None:
    completed: list[Any] = []

    @immediate.signal(SIGNAL_COMPLETE)
    def on_complete(signal: str, task: Any, *extra: Any) -> None:
        completed.append((signal, task, extra))

    immediate.signal()(recorder)

    @immediate.task
    def add(a: int, b: int) -> int:
        return a + b

    result = add(1, b=2)
    assert recorder.names == [SIGNAL_ENQUEUED, SIGNAL_EXECUTING, SIGNAL_COMPLETE]
    assert len(completed) == 1
    signal, ref, extra = completed[0]
    assert (signal, ref.id, ref.name, ref.queue, extra) == (
        SIGNAL_COMPLETE, result.id, "add", "default", ()
    )  # fmt: skip
    assert (ref.args, ref.kwargs, ref.attempt) == ((1,), {"b": 2}, 1)
    assert all(ref.id == result.id for _, ref, _ in recorder.calls)


def test_signal_receivers_see_the_failure_sequence(immediate: Scoter, recorder: Any) -> None:
    immediate.signal()(recorder)
    calls: list[None] = []

    @immediate.task(retries=1, retry_delay=0.0)
    def boom() -> None:
        calls.append(None)
        bounded(calls)
        raise KeyError("missing")

    boom()
    assert recorder.names == [
        SIGNAL_ENQUEUED,
        SIGNAL_EXECUTING, SIGNAL_ERROR, SIGNAL_RETRYING,
        SIGNAL_EXECUTING, SIGNAL_ERROR, SIGNAL_DEAD,
    ]  # fmt: skip
    errors = recorder.extras(SIGNAL_ERROR)
    assert all(isinstance(extra[0], KeyError) for extra in errors)
    (retrying,) = recorder.extras(SIGNAL_RETRYING)
    assert isinstance(retrying[0], KeyError)
    assert retrying[1] == 0.0
    assert recorder.extras(SIGNAL_DEAD) == [("error",)]
    attempts = [ref.attempt for name, ref, _ in recorder.calls if name == SIGNAL_EXECUTING]
    assert attempts == [1, 2]


def test_signal_receiver_for_several_names(immediate: Scoter, recorder: Any) -> None:
    immediate.signal(SIGNAL_ENQUEUED, SIGNAL_DEAD)(recorder)

    @immediate.task
    def boom() -> None:
        raise RuntimeError

    boom()
    assert recorder.names == [SIGNAL_ENQUEUED, SIGNAL_DEAD]


def test_a_failing_receiver_does_not_break_the_task(
    immediate: Scoter, recorder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @immediate.signal()
    def broken(signal: str, task: Any, *extra: Any) -> None:
        raise RuntimeError("receiver bug")

    immediate.signal()(recorder)

    @immediate.task
    def add(a: int, b: int) -> int:
        return a + b

    result = add(2, 2)
    assert result.get() == 4
    assert recorder.names == [SIGNAL_ENQUEUED, SIGNAL_EXECUTING, SIGNAL_COMPLETE]
    assert "receiver bug" in caplog.text


def test_disconnected_receiver_hears_nothing(immediate: Scoter, recorder: Any) -> None:
    immediate.signal()(recorder)
    immediate.disconnect_signal(recorder)

    @immediate.task
    def f() -> None: ...

    f()
    assert recorder.calls == []


def test_unknown_signal_name_raises_value_error(plain: Scoter) -> None:
    with pytest.raises(ValueError, match="no-such-signal"):
        plain.signal("no-such-signal")(lambda *a: None)


def test_enqueued_signal_names_the_task_queue(immediate: Scoter, recorder: Any) -> None:
    immediate.signal()(recorder)

    @immediate.task(queue="emails")
    def send() -> None: ...

    send()
    assert [(name, ref.queue) for name, ref, _ in recorder.calls] == [
        (SIGNAL_ENQUEUED, "emails"), (SIGNAL_EXECUTING, "emails"), (SIGNAL_COMPLETE, "emails"),
    ]  # fmt: skip


# -- context ----------------------------------------------------------------------------------


def test_context_task_sees_its_id_name_and_attempt(immediate: Scoter) -> None:
    @immediate.task(context=True)
    def whoami(ctx: TaskContext) -> dict[str, Any]:
        return {
            "id": ctx.task_id, "name": ctx.task_name, "attempt": ctx.attempt,
            "checkpoint": ctx.checkpoint_state, "stop": ctx.stop_requested,
            "current": current_context() is ctx,
        }  # fmt: skip

    result = whoami()
    assert result.get() == {
        "id": result.id, "name": "whoami", "attempt": 1, "checkpoint": None, "stop": False,
        "current": True,
    }  # fmt: skip


def test_current_context_in_a_plain_task_and_outside(immediate: Scoter) -> None:
    @immediate.task
    def plain() -> list[Any]:
        ctx = current_context()
        assert ctx is not None
        return [ctx.task_id, ctx.attempt]

    result = plain()
    assert result.get() == [result.id, 1]
    assert current_context() is None


def test_checkpoint_then_interrupt_releases_and_the_next_run_resumes(app: Scoter) -> None:
    seen: list[tuple[int, Any]] = []

    @app.task(context=True)
    def resumable(n: int, ctx: TaskContext) -> int:
        seen.append((ctx.attempt, ctx.checkpoint_state))
        if ctx.checkpoint_state is None:
            ctx.checkpoint({"done": n // 2, "at": dt.date(2024, 1, 1)})
            assert ctx.checkpoint_state == {"done": n // 2, "at": dt.date(2024, 1, 1)}
            raise Interrupt()
        return int(ctx.checkpoint_state["done"]) + n

    result = resumable(10)
    run_one(app, "first")
    info = app.storage.get(result.id)
    assert info is not None
    assert info.state is State.QUEUED
    assert (info.interruptions, info.errors) == (1, 0)
    assert info.history[-1]["outcome"] == "interrupted"

    run_one(app, "second")
    assert seen == [(1, None), (2, {"done": 5, "at": dt.date(2024, 1, 1)})]
    assert result.get() == 15
    assert app.storage.get(result.id).attempts == 2  # type: ignore[union-attr]


def test_interrupt_in_immediate_mode_resumes_at_once(immediate: Scoter, recorder: Any) -> None:
    immediate.signal(SIGNAL_INTERRUPTED)(recorder)
    calls: list[None] = []

    @immediate.task(context=True)
    def steps(ctx: TaskContext) -> int:
        calls.append(None)
        bounded(calls)
        done = ctx.checkpoint_state or 0
        if done < 3:
            ctx.checkpoint(done + 1)
            raise Interrupt()
        return int(ctx.attempt)

    assert steps().get() == 4
    assert recorder.names == [SIGNAL_INTERRUPTED] * 3


def test_checkpoint_is_stored_as_json(app: Scoter) -> None:
    @app.task(context=True)
    def save(ctx: TaskContext) -> None:
        ctx.checkpoint({"k": (1, 2)})
        raise Interrupt()

    result = save()
    leases = app.storage.claim(["default"], 1, 30.0, "c")
    InlineConsumer(app, "c").execute(leases[0])
    (again,) = app.storage.claim(["default"], 1, 30.0, "c")
    assert again.id == result.id
    assert again.checkpoint is not None
    assert json.loads(again.checkpoint)["k"] == {"__scoter__": "tuple", "v": [1, 2]}
