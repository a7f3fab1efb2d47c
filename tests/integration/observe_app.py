"""Tasks for the observability tests, added to integration_app's app.

Run with `scoter worker observe_app:app`.
"""

from __future__ import annotations

from integration_app import app

from scoter import Interrupt, TaskContext

__all__ = ["app", "echo_headers", "interrupted_once", "loses_lease"]


@app.task(context=True)
def loses_lease(ctx: TaskContext) -> int:
    """On its first attempt, gives its lease away (as a take-over would): its ack is refused."""
    if ctx.attempt == 1:
        app.storage.release(ctx.token, "given away by the task")
    return ctx.attempt


@app.task(context=True)
def interrupted_once(ctx: TaskContext) -> int:
    """Hands itself back on its first attempt."""
    if ctx.attempt == 1:
        raise Interrupt()
    return ctx.attempt


@app.task(context=True)
def echo_headers(ctx: TaskContext) -> dict[str, str]:
    return dict(ctx.headers)
