"""integration_app with the steps of pipelines and chords: each records its task id and
attempt (`record`), so that tests count executions by their side effects."""

from __future__ import annotations

import time

from integration_app import app, record

from scoter import TaskContext

__all__ = ["app"]

STEP_S = 0.3
"""How long a step runs: long enough that consumers are killed in the middle of steps."""


@app.task(context=True)
def step(value: int, ctx: TaskContext) -> int:
    record("step", ctx)
    time.sleep(STEP_S)
    return value + 1


@app.task(context=True)
def gather(results: list[int], ctx: TaskContext) -> list[int]:
    record("step", ctx)
    time.sleep(STEP_S)
    return results
