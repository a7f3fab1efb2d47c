"""Huey's pipelines, groups and chords on scoter's flows (`scoter.flows`): each hand-off is
stored with the ack (or the death) of the step before it, in one atomic step.

What Huey does and this keeps: a later step gets the value before it after its own arguments
(`huey_order`); an error handler gets the exception the step raised; a chord's callback runs
once every member ended, a member that ended dead contributing an `Error` (its failure) or
`SKIPPED` (revoked or expired) — the member itself stays dead, for the operator. Chords nest,
and a chord's callback may be a pipeline.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from scoter import flows
from scoter.exceptions import TaskFailed
from scoter.flows_wire import Call
from scoter.huey.results import ChordResult, Result, ResultGroup
from scoter.huey.tasks import Task, chord, group
from scoter.huey.utils import SKIPPED, Error
from scoter.task import Message

if TYPE_CHECKING:
    from scoter.huey.api import Huey

FOLLOWS = "__huey_follows__"
"""Marks a later step of a Huey pipeline, an error handler or a chord callback: scoter hands it
the value first, and `huey_order` puts it where Huey does."""
STAND_IN = "scoter.huey.chord_member_dead"
"""The task that stands in for a chord member that ended dead: its value (an Error or
SKIPPED) is the member's result in the list its chord's callback gets."""
SKIPPED_REASONS = ("revoked", "expired")
"""Dead reasons of a member that never ran: it contributes SKIPPED, as in Huey."""


def register_stand_in(huey: Huey) -> None:
    """Register the chord members' stand-in on the Huey app's scoter app, on a queue of its
    own: no task of the Huey app's (`len(huey)` does not count it), which every consumer of the
    app takes (a consumer takes every task's queue)."""
    if STAND_IN not in huey.app.tasks:
        huey.app.task(name=STAND_IN, queue=stand_in_queue(huey))(stand_in)


def stand_in_queue(huey: Huey) -> str:
    return f"{huey.app.default_queue}.chords"


def stand_in(failure: TaskFailed) -> Any:
    """A dead chord member's result: SKIPPED when it never ran, else an Error as Huey stores
    a failure."""
    if failure.reason in SKIPPED_REASONS:
        return SKIPPED
    exc = failure.exception
    lines = (failure.error or "").strip().splitlines()
    error = repr(exc) if exc is not None else (lines[-1] if lines else failure.reason)
    return Error({"error": error, "retries": 0, "traceback": failure.error or "",
                  "task_id": failure.task_id})  # fmt: skip


def enqueue_flow(huey: Huey, flow: Task | chord) -> Result | ResultGroup | ChordResult | None:
    """A pipeline or chord, on scoter's flows (each hand-off atomic with the ack before it)."""
    if isinstance(flow, chord):
        stored: Any = huey.app.enqueue(_chord(huey, flow))
        if not huey.results:
            return None
        steps = [handle(huey, r.id) for r in stored.pipeline_results or [stored.callback]]
        return ChordResult(  # the callback's handle is the pipeline's first, as in Huey
            [handle(huey, r.id) for r in stored.results], steps[0],
            ResultGroup(steps) if len(steps) > 1 else None,
        )  # fmt: skip
    stored = huey.app.enqueue(_pipeline(huey, flow))
    ids = [r.id for r in stored]
    results = [Result(huey, Task(id=i), upstream=tuple(ids[:n])) for n, i in enumerate(ids)]
    if not huey.results:
        return None
    return results[0] if len(results) == 1 else ResultGroup(results)


def handle(huey: Huey, task_id: str) -> Result:
    return Result(huey, Task(id=task_id))


def _chord(huey: Huey, c: chord) -> flows.Chord:
    members = [_member(huey, t) for t in c.tasks]
    callback = _pipeline(huey, c.callback, follows=True)
    return flows.Chord(flows.Group(members), callback, STAND_IN)


def _member(huey: Huey, task: Task | chord) -> flows.Pipeline | flows.Chord:
    if isinstance(task, group):
        raise ValueError("cannot use `group` as a chord member - use .then() to convert to a "
                         "`chord` first.")  # fmt: skip
    return _chord(huey, task) if isinstance(task, chord) else _pipeline(huey, task)


def _pipeline(huey: Huey, task: Task, *, follows: bool = False) -> flows.Pipeline:
    """A Huey pipeline: each step with its own error handler, as Huey runs them (a step's
    `on_error` runs when that step fails, not when another does)."""
    first = _following(huey, task) if follows else _message(huey, task)
    steps = []
    step = task.on_complete
    while step is not None:
        steps.append(_call(huey, step))
        step = step.on_complete
    return flows.Pipeline(first, tuple(steps), first_error=_handler(huey, task.on_error))


def _call(huey: Huey, task: Task) -> Call:
    """A later step of a Huey pipeline, or an error handler, with its own error handler."""
    m = _following(huey, task)
    return Call(m.task, m.args, m.kwargs, m.queue, m.priority, _handler(huey, task.on_error))


def _handler(huey: Huey, task: Task | None) -> Call | None:
    """An error handler (`task.error(...)`; a second `.error()` on a Huey task is the
    handler's own, which runs when the handler fails, given the handler's exception)."""
    return None if task is None else _call(huey, task)


def _message(huey: Huey, task: Task) -> Message:
    from scoter.huey.bridge import message_of

    return message_of(huey, task)


def _following(huey: Huey, task: Task) -> Message:
    """The message of a step that gets the value before it: marked for `huey_order`."""
    message = _message(huey, task)
    return dataclasses.replace(message, kwargs={**message.kwargs, FOLLOWS: True})


def huey_order(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], Any]:
    """A later step's arguments as Huey passes them: the value scoter put first goes after the
    step's own arguments — a tuple spread, a dict's keys added where the step has no keyword
    argument of that name, None left out (Huey's `Task.extend_data`). An error handler's
    failure is the exception the step raised, when it reached here."""
    value, own = args[0], args[1:]
    if isinstance(value, TaskFailed) and value.exception is not None:
        value = value.exception
    if value is None or value == ():
        return own, kwargs
    if isinstance(value, tuple):
        return (*own, *value), kwargs
    if isinstance(value, dict):
        return own, {**value, **kwargs}
    return (*own, value), kwargs


def handed_on(huey: Huey, task_id: str) -> list[Task]:
    """What the ack of finished flow step `task_id` stored, as Huey's SIGNAL_ENQUEUED names
    it: the next step, or the chord's callback when this member completed the count (where
    members finish at once on several consumers, more than one may name it)."""
    app = huey.app
    info = app.storage.get(task_id)
    flow = None if info is None else flows.flow_of(app, info)
    if flow is None:
        return []
    if flow.next:
        return [_stored_task(huey, flow.step_id(flow.step + 1))]
    join = flow.join
    if join is None:
        return []
    chord_info = app.storage.chord_info(join.chord)
    if chord_info is None or len(chord_info.results) < join.size:
        return []
    return [_stored_task(huey, join.chord)]


def _stored_task(huey: Huey, task_id: str) -> Task:
    from scoter.huey.bridge import task_of_info

    info = huey.app.storage.get(task_id)
    return Task(id=task_id) if info is None else task_of_info(huey, info)
