"""scoter's hooks around attempts, `Cancel`, and `Interrupt(delay=)`, in immediate mode."""

from __future__ import annotations

import time
from typing import Any

from scoter import Scoter, TaskContext
from scoter.exceptions import Cancel, Interrupt
from scoter.states import State


def test_pre_and_post_execute_run_around_each_attempt() -> None:
    app = Scoter("hooks", immediate=True)
    seen: list[tuple[str, Any, Any]] = []

    @app.hooks.pre_execute
    def before(ctx: TaskContext) -> None:
        seen.append(("pre", ctx.task_name, None))

    @app.hooks.post_execute
    def after(ctx: TaskContext, value: Any, exc: BaseException | None) -> None:
        seen.append(("post", value, type(exc).__name__ if exc else None))

    @app.task
    def double(n: int) -> int:
        return 2 * n

    @app.task
    def boom() -> None:
        raise ValueError("x")

    assert double(4).get() == 8
    boom()
    assert seen == [("pre", "double", None), ("post", 8, None), ("pre", "boom", None),
                    ("post", None, "ValueError")]  # fmt: skip


def test_cancel_in_a_pre_execute_hook_ends_the_task_dead_unrun() -> None:
    app = Scoter("cancel", immediate=True)
    ran: list[int] = []

    @app.hooks.pre_execute
    def veto(ctx: TaskContext) -> None:
        raise Cancel("not today")

    @app.task(retries=3)
    def work() -> None:
        ran.append(1)

    result = work()
    info = app.storage.get(result.id)
    assert ran == []
    assert info is not None and info.state is State.DEAD and info.reason == "canceled"
    assert info.attempts == 1  # no retry spent or taken


def test_a_failing_hook_is_logged_and_the_task_runs() -> None:
    app = Scoter("failing", immediate=True)
    app.hooks.pre_execute(lambda ctx: 1 / 0)

    @app.task
    def ok() -> str:
        return "ran"

    assert ok().get() == "ran"


def test_interrupt_with_a_delay_hands_the_task_back_for_later() -> None:
    app = Scoter("later", immediate=True)

    @app.task
    def not_yet() -> None:
        raise Interrupt("later", delay=60)

    result = not_yet()
    info = app.storage.get(result.id)
    assert info is not None and info.state is State.SCHEDULED
    assert info.eta is not None and info.eta > time.time() + 50
