"""OpenTelemetry tracing (the `otel` extra: `pip install 'scoter[otel]'`), on with
`Scoter(..., tracing=True)`.

- **enqueue**: a PRODUCER span `enqueue <task>` (`enqueue_many` for several messages) around
  the storage call, whose context is injected into each message's headers (W3C
  `traceparent`, or whatever propagator is configured). The headers are part of the message,
  signed with it when signing is on.
- **each attempt**: a CONSUMER span `run <task>`, child of the context extracted from
  `ctx.headers`, current while the task's code runs (spans the task makes nest under it), with
  the attempt, the budgets spent and allowed, and the attempt's outcome as attributes; an
  error is recorded on it with the span's status set to ERROR.

So the request that enqueued a task and every attempt of it are one trace. Spans go wherever
the application's tracer provider sends them; with the process executor the attempt's span is
made in the child, which imports the app and so its tracing set-up. An attempt whose process
died (a crash) ends no span. scoter imports opentelemetry only when tracing is on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from scoter.consumer.attempt import FAILED, INTERRUPTED, Outcome
from scoter.exceptions import ConfigurationError
from scoter.retry import RetryPolicy

if TYPE_CHECKING:
    from scoter.context import TaskContext
    from scoter.task import Message, Task

T = TypeVar("T")
SYSTEM = "scoter"


class Tracing:
    """Makes the spans of one app."""

    def __init__(self) -> None:
        try:
            from opentelemetry import context, propagate, trace
        except ImportError as exc:
            raise ConfigurationError(
                f"tracing=True needs OpenTelemetry: pip install 'scoter[otel]' ({exc})"
            ) from exc
        from scoter import __version__

        self._context = context
        self._propagate = propagate
        self._trace = trace
        self.tracer = trace.get_tracer("scoter", __version__)

    def enqueue(self, messages: list[Message], store: Callable[[list[Message]], T]) -> T:
        """Call `store` with `messages` whose headers carry a new producer span's context."""
        one = messages[0] if len(messages) == 1 else None
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.batch.message_count": len(messages),
        }
        if one is not None:
            attributes["messaging.message.id"] = one.id
            attributes["scoter.task"] = one.task
        name = f"enqueue {one.task}" if one is not None else "enqueue_many"
        kind = self._trace.SpanKind.PRODUCER
        with self.tracer.start_as_current_span(name, kind=kind, attributes=attributes):
            carrier: dict[str, str] = {}
            self._propagate.inject(carrier)
            traced = [dataclasses.replace(m, headers={**m.headers, **carrier}) for m in messages]
            return store(traced)

    def attempt(self, ctx: TaskContext, task: Task[Any, Any]) -> Attempt:
        """Start the span of one attempt, current in this thread (or asyncio task) until
        `Attempt.end`."""
        lease, policy = ctx.lease, task.policy
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.destination.name": lease.queue,
            "messaging.message.id": lease.id,
            "scoter.task": lease.name,
            "scoter.attempt": lease.attempt,
            "scoter.errors": lease.errors,
            "scoter.interruptions": lease.interruptions,
            "scoter.crashes": lease.crashes,
            **_budgets(policy),
        }
        parent = self._propagate.extract(dict(ctx.headers))
        span = self.tracer.start_span(
            f"run {lease.name}", context=parent, kind=self._trace.SpanKind.CONSUMER,
            attributes=attributes,
        )  # fmt: skip
        token = self._context.attach(self._trace.set_span_in_context(span, parent))
        return Attempt(self, span, token)


def _budgets(policy: RetryPolicy) -> dict[str, int]:
    return {
        "scoter.retries": policy.retries,
        "scoter.max_interruptions": policy.max_interruptions,
        "scoter.max_crashes": policy.max_crashes,
    }


class Attempt:
    """The span of one running attempt."""

    def __init__(self, tracing: Tracing, span: Any, token: Any) -> None:
        self._tracing = tracing
        self.span = span
        self._token = token

    def end(self, outcome: Outcome | None) -> None:
        """Record the outcome (None: the attempt raised through scoter) and end the span."""
        span = self.span
        status = self._tracing._trace.Status
        codes = self._tracing._trace.StatusCode
        if outcome is None:
            span.set_status(status(codes.ERROR, "the attempt did not finish"))
        else:
            span.set_attribute("scoter.outcome", outcome.kind)
            if outcome.kind == FAILED:
                if outcome.exc is not None:
                    span.record_exception(outcome.exc)
                span.set_status(status(codes.ERROR, outcome.summary))
            elif outcome.kind == INTERRUPTED:
                span.set_attribute("scoter.detail", outcome.summary)
        self._tracing._context.detach(self._token)
        span.end()
