"""OpenTelemetry: the request that enqueued a task and each attempt of it are one trace,
through the message headers; spans to an in-memory exporter, a consumer in this process on a
real SQLite file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scoter import Message, Scoter
from scoter.states import LIVE_STATES

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans ended during the test (one SDK provider for the process: it is global)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk_trace.TracerProvider):
        provider = sdk_trace.TracerProvider()
        trace.set_tracer_provider(provider)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def traced_app(tmp_path: Path) -> Scoter:
    app = Scoter("traced", f"sqlite:///{tmp_path / 'queue.db'}", tracing=True)

    @app.task
    def add(a: int, b: int) -> int:
        with trace.get_tracer("the task").start_as_current_span("inside add"):
            return a + b

    @app.task(retries=1, max_crashes=5)
    def fails() -> None:
        raise ValueError("boom")

    @app.task
    async def add_async(a: int, b: int) -> int:
        return a + b

    return app


def drain(app: Scoter, executor: str = "thread") -> None:
    consumer = app.consumer(workers=2, poll=0.01, executor=executor)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    try:
        while any(n for (_, s), n in app.storage.counts().items() if s in LIVE_STATES):
            threading.Event().wait(0.01)
    finally:
        consumer.stop()
        thread.join(10)


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


@pytest.mark.parametrize(("task", "executor"), [("add", "thread"), ("add_async", "asyncio")])
def test_enqueue_and_execution_are_one_trace(
    spans: InMemorySpanExporter, tmp_path: Path, task: str, executor: str
) -> None:
    app = traced_app(tmp_path)
    with trace.get_tracer("the web app").start_as_current_span("POST /orders") as request:
        result = app.tasks[task](2, 3)
    drain(app, executor)
    assert result.get() == 5
    found = by_name(spans)
    [enqueue], [run] = found[f"enqueue {task}"], found[f"run {task}"]
    trace_id = request.get_span_context().trace_id
    assert {enqueue.context.trace_id, run.context.trace_id} == {trace_id}
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert run.parent.span_id == enqueue.context.span_id
    assert (enqueue.kind, run.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    attributes = run.attributes
    assert attributes["scoter.outcome"] == "succeeded" and attributes["scoter.attempt"] == 1
    assert attributes["messaging.message.id"] == result.id
    assert attributes["messaging.destination.name"] == "default"
    assert (attributes["scoter.retries"], attributes["scoter.max_crashes"]) == (0, 3)
    if task == "add":  # the task's own span is a child of its attempt's
        [inside] = found["inside add"]
        assert inside.parent.span_id == run.context.span_id


def test_each_attempt_of_a_failing_task_is_a_span_of_the_trace_with_its_error(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    app = traced_app(tmp_path)
    with trace.get_tracer("a script").start_as_current_span("nightly") as request:
        [result] = app.enqueue_many([Message("fails")])
    drain(app)
    runs = sorted(by_name(spans)["run fails"], key=lambda s: s.attributes["scoter.attempt"])
    assert [s.attributes["scoter.attempt"] for s in runs] == [1, 2]
    assert [s.attributes["scoter.errors"] for s in runs] == [0, 1]
    assert {s.context.trace_id for s in runs} == {request.get_span_context().trace_id}
    for span in runs:
        assert span.attributes["scoter.outcome"] == "error"
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError('boom')"
        assert [e.name for e in span.events] == ["exception"]
    assert app.storage.get(result.id).reason == "error"  # type: ignore[union-attr]


def test_headers_given_by_the_caller_are_kept_beside_the_trace_context(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    app = traced_app(tmp_path)
    app.enqueue(Message("add", (1, 1), headers={"tenant": "t-9"}))
    [lease] = app.storage.claim(["default"], 1, 30.0, "c")
    headers = app.decode_claimed(lease)[2]
    assert headers["tenant"] == "t-9" and headers["traceparent"].startswith("00-")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_scoter_imports_neither_extra_unless_asked() -> None:
    done = run_python("""
        import sys
        import scoter.cli
        from scoter import Scoter
        app = Scoter("plain", "memory://")
        app.task(lambda: 1, name="one")()
        app.run_pending()
        app.consumer()
        loaded = [m for m in sys.modules if m.startswith(("opentelemetry", "prometheus_client"))]
        assert not loaded, loaded
    """)
    assert done.returncode == 0, done.stderr


def test_a_missing_extra_is_a_configuration_error_saying_what_to_install() -> None:
    done = run_python("""
        import sys
        sys.modules["opentelemetry"] = None  # as if not installed
        sys.modules["prometheus_client"] = None
        from scoter import ConfigurationError, Scoter
        from scoter.contrib.prometheus import client
        for make in (lambda: Scoter("x", "memory://", tracing=True), client):
            try:
                make()
            except ConfigurationError as exc:
                print(exc)
    """)
    assert done.returncode == 0, done.stderr
    tracing, metrics = done.stdout.splitlines()
    assert tracing.startswith("tracing=True needs OpenTelemetry: pip install 'scoter[otel]'")
    assert metrics.startswith("metrics need the prometheus_client package: pip install")
