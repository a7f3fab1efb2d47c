"""Hooks: code an app runs in every worker and around every attempt.

- `on_startup` / `on_shutdown`: called with no arguments in each worker before its first task
  and after its last: each worker thread (both), each process child (`on_startup` only: a
  stopping consumer kills its children, which hold nothing of their own), and the asyncio
  executor's loop thread (both; `on_shutdown` not when a task blocks the loop past the
  drain deadline). Open and close per-worker resources there.
- `pre_execute(ctx)`: before the task's function, in the thread that runs it (for an
  `async def` task: on the event loop's thread, so a hook must not block). Raising
  `Cancel` ends the task dead with reason `canceled`; any other exception is logged.
- `post_execute(ctx, value, exc)`: after the function returned (`exc` None) or raised; what it
  raises is logged. It never changes the outcome.

A hook that fails is logged and never disturbs the task or the consumer (but for `Cancel`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from scoter.exceptions import Cancel

if TYPE_CHECKING:
    from scoter.context import TaskContext

log = logging.getLogger("scoter.hooks")

F = TypeVar("F", bound=Callable[..., Any])
PreExecute = Callable[["TaskContext"], Any]
PostExecute = Callable[["TaskContext", Any, "BaseException | None"], Any]


class Hooks:
    """The hooks of one app: `@app.hooks.on_startup`, `@app.hooks.pre_execute`, ..."""

    def __init__(self) -> None:
        self.startup: list[Callable[[], Any]] = []
        self.shutdown: list[Callable[[], Any]] = []
        self.pre: list[PreExecute] = []
        self.post: list[PostExecute] = []

    def on_startup(self, fn: F) -> F:
        """Register `fn()` to run in each worker before its first task."""
        self.startup.append(fn)
        return fn

    def on_shutdown(self, fn: F) -> F:
        """Register `fn()` to run in each worker after its last task."""
        self.shutdown.append(fn)
        return fn

    def pre_execute(self, fn: F) -> F:
        """Register `fn(ctx)` to run before each attempt; raise `Cancel` to cancel it."""
        self.pre.append(fn)
        return fn

    def post_execute(self, fn: F) -> F:
        """Register `fn(ctx, value, exc)` to run after each attempt."""
        self.post.append(fn)
        return fn

    def worker_started(self) -> None:
        _call_each("on_startup", self.startup)

    def worker_stopped(self) -> None:
        _call_each("on_shutdown", self.shutdown)

    def before(self, ctx: TaskContext) -> None:
        """Run the pre-execute hooks; `Cancel` passes through, anything else is logged."""
        for hook in list(self.pre):
            try:
                hook(ctx)
            except Cancel:
                raise
            except Exception:
                log.exception("pre_execute hook %s failed for task %s", _name(hook), ctx.task_id)

    def after(self, ctx: TaskContext, value: Any, exc: BaseException | None) -> None:
        for hook in list(self.post):
            try:
                hook(ctx, value, exc)
            except Exception:
                log.exception("post_execute hook %s failed for task %s", _name(hook), ctx.task_id)


def _call_each(kind: str, hooks: list[Callable[[], Any]]) -> None:
    for hook in list(hooks):
        try:
            hook()
        except Exception:
            log.exception("%s hook %s failed", kind, _name(hook))


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", repr(fn))
