"""Calls checked where they are made: arguments against the task's signature at enqueue, task
options at registration, `enqueue` by name, and `ctx` given as `context=True` asks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from scoter import Message, Scoter, State, TaskContext, crontab
from scoter.consumer.attempt import NEEDS_ASYNCIO
from scoter.task import AsyncTask


@pytest.fixture
def app() -> Scoter:
    return Scoter("calls", "memory://")


def counts(app: Scoter) -> int:
    return sum(app.storage.counts().values())


# -- arguments, checked at enqueue ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "wrong"),
    [
        ((1,), {}, "missing a required argument: 'b'"),
        ((1, 2), {"c": 2}, "unexpected keyword argument 'c'"),
        ((1, 2, 3), {}, "too many positional arguments"),
        ((1, 2), {"a": 1}, "multiple values for argument 'a'"),
    ],
)
def test_a_wrong_call_raises_type_error_at_once_and_stores_nothing(
    app: Scoter, args: tuple[Any, ...], kwargs: dict[str, Any], wrong: str
) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(TypeError, match=f"task 'add' .*{re.escape(wrong)}"):
        add(*args, **kwargs)
    with pytest.raises(TypeError, match=re.escape(wrong)):
        app.enqueue(add, *args, **kwargs)
    assert counts(app) == 0


def test_schedule_map_and_messages_are_checked_too(app: Scoter) -> None:
    @app.task
    def add(a: int, b: int = 0) -> int:
        return a + b

    with pytest.raises(TypeError, match="'c'"):
        add.schedule((1,), {"c": 2}, delay=10)
    with pytest.raises(TypeError, match="too many positional arguments"):
        add.map([(1,), (1, 2), (1, 2, 3)])
    with pytest.raises(TypeError, match="missing a required argument: 'a'"):
        app.enqueue_many([add.s(1), Message("add", (), {"b": 1})])
    with pytest.raises(TypeError, match="missing"):
        add.with_options(delay=10)()  # type: ignore[call-arg]
    assert counts(app) == 0, "a batch with one wrong call stores none of it"
    assert len(add.map([(1,), (1, 2)])) == 2


def test_every_kind_of_parameter_is_checked(app: Scoter) -> None:
    @app.task
    def flexible(a: int, /, b: int, *rest: int, c: int, d: int = 0, **more: int) -> None:
        pass

    flexible(1, 2, 3, 4, c=5, e=6)
    flexible(1, b=2, c=3)
    with pytest.raises(TypeError, match="missing a required argument: 'c'"):
        flexible(1, 2)
    with pytest.raises(TypeError, match="'a'"):
        flexible(a=1, b=2, c=3)  # type: ignore[call-arg]
    assert counts(app) == 2


def test_a_task_enqueued_by_a_name_this_process_does_not_register_is_not_checked(
    app: Scoter,
) -> None:
    app.enqueue_message(Message("defined.elsewhere", (1, 2, 3), {"x": 1}))
    assert counts(app) == 1


# -- context=True ------------------------------------------------------------------------------


def test_a_first_ctx_parameter_is_passed_positionally_and_left_out_of_the_call() -> None:
    app = Scoter("ctx", immediate=True)

    @app.task(context=True)
    def first(ctx: TaskContext, n: int, *, times: int = 1) -> str:
        return f"{ctx.task_name} {n * times}"

    @app.task(context=True)
    def last(n: int, ctx: TaskContext) -> str:
        return f"{ctx.task_name} {n}"

    assert first(2, times=3).get() == "first 6"
    assert last(5).get() == "last 5"  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'ctx'"):
        first(2, ctx=None)  # type: ignore[call-arg]


def test_call_local_of_a_context_task_passes_no_context() -> None:
    app = Scoter("ctx", "memory://")

    @app.task(context=True)
    def which(ctx: TaskContext | None, n: int) -> str:
        return f"{ctx} {n}"

    assert which.call_local(3) == "None 3"


def test_context_true_without_a_ctx_parameter_is_refused_at_registration(app: Scoter) -> None:
    with pytest.raises(TypeError, match=r"context=True but has no ctx parameter.*def f\(ctx"):

        @app.task(context=True)
        def f(n: int) -> None:
            pass


def test_forgetting_context_true_says_so_at_enqueue(app: Scoter) -> None:
    @app.task
    def needs(n: int, ctx: TaskContext) -> None:
        pass

    with pytest.raises(TypeError, match=r"'ctx'.*@app.task\(context=True\)"):
        needs(1)  # type: ignore[call-arg]


def test_forgetting_context_true_says_so_in_the_dead_task_too(app: Scoter) -> None:
    """A producer that does not register the task enqueues it by name: the consumer's error
    carries the hint."""

    @app.task
    def needs(ctx: TaskContext) -> None:
        pass

    producer = Scoter("producer", app.storage)
    task_id = producer.enqueue_message(Message("needs")).id
    app.run_pending()
    info = app.storage.get(task_id)
    assert info is not None and info.state is State.DEAD
    assert info.error is not None and "missing 1 required positional argument: 'ctx'" in info.error
    assert "hint: scoter passes a parameter named ctx only to tasks registered with" in info.error


def test_a_periodic_task_that_needs_arguments_is_refused_at_registration(app: Scoter) -> None:
    with pytest.raises(TypeError, match=r"task 'tick'.*'ctx'.*context=True"):

        @app.periodic_task(crontab(minute="0"))
        def tick(ctx: TaskContext) -> None:
            pass

    assert "tick" not in app.periodic


# -- task options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "note"),
    [
        ("expire", "expire (did you mean expires?)"),
        ("max_retries", "max_retries (scoter's is retries)"),
        ("retires", "retires (did you mean retries?)"),
        ("colour", "colour;"),
    ],
)
def test_an_unknown_task_option_names_the_valid_ones(app: Scoter, option: str, note: str) -> None:
    with pytest.raises(TypeError) as info:
        app.task(**{option: 30})
    message = str(info.value)
    assert f"unknown task option(s): {note}" in message
    assert "the options are name, queue, priority, context, timeout, expires, retries," in message
    assert "RetryPolicy" not in message and "__init__" not in message
    with pytest.raises(TypeError, match=option):
        app.periodic_task(crontab(), **{option: 1})


# -- enqueue by name ---------------------------------------------------------------------------


def test_enqueue_takes_a_registered_task_name() -> None:
    app = Scoter("names", immediate=True)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    assert app.enqueue("add", 1, 2).get() == 3
    with pytest.raises(TypeError, match="missing a required argument"):
        app.enqueue("add", 1)


def test_enqueue_of_an_unregistered_name_or_another_object_says_what_to_pass(app: Scoter) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(TypeError, match=r"no task named 'ad' .*\(registered: add\).*Message\('ad'"):
        app.enqueue("ad", 1, 2)
    with pytest.raises(TypeError, match="enqueue takes a task, its name or a Message, not int"):
        app.enqueue(42, 1)  # type: ignore[arg-type]
    assert counts(app) == 0


# -- async def tasks ---------------------------------------------------------------------------


def test_an_async_task_is_an_async_task_and_call_local_gives_its_coroutine(app: Scoter) -> None:
    @app.task
    async def fetch(n: int) -> int:
        return n * 2

    assert isinstance(fetch, AsyncTask)
    coroutine = fetch.call_local(4)
    with pytest.raises(StopIteration) as done:
        coroutine.send(None)
    assert done.value.value == 8


def test_an_async_task_run_in_a_thread_goes_dead_naming_the_asyncio_executor(app: Scoter) -> None:
    @app.task(retries=3)
    async def fetch(n: int) -> int:
        return n

    task_id = fetch(1).id
    assert app.run_pending() == 1, "dead at once: retrying on the same executor cannot help"
    info = app.storage.get(task_id)
    assert info is not None and (info.state, info.reason) == (State.DEAD, NEEDS_ASYNCIO)
    assert info.error is not None and "-k asyncio" in info.error
    assert "JSON" not in info.error
