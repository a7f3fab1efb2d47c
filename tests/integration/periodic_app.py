"""integration_app with a periodic task every second that records the slot it ran for."""

from __future__ import annotations

from integration_app import app, record

from scoter import TaskContext, every

__all__ = ["app"]


@app.periodic_task(every(seconds=1), context=True)
def each_second(ctx: TaskContext) -> None:
    assert ctx.scheduled_for is not None
    record("slot", ctx)
