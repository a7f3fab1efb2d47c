"""Lifecycle events: observers get the kinds they ask for, the log at each kind's level, JSON
lines carry the fields, and an event nobody listens for builds nothing."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from scoter import Scoter
from scoter.consumer import events as ev
from scoter.consumer.supervisor import Consumer
from scoter.display import JsonFormatter
from scoter.states import LIVE_STATES
from scoter.storage.base import NewTask

PAYLOAD = b'{"args": [], "kwargs": {}}'


class Recorder:
    def __init__(self, *kinds: str) -> None:
        self.kinds = frozenset(kinds or ev.KINDS)
        self.seen: list[ev.TaskEvent] = []

    def observe(self, event: ev.TaskEvent) -> None:
        self.seen.append(event)


def app_with_tasks() -> Scoter:
    app = Scoter("events", "memory://")

    @app.task
    def fine() -> int:
        return 1

    @app.task(retries=1)
    def fails() -> None:
        raise ValueError("boom")

    return app


def run_consumer(app: Scoter, *observers: ev.Observer) -> Consumer:
    """Run a consumer until every task is done or dead, then stop it."""
    consumer = app.consumer(workers=2, poll=0.01, observers=observers)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    try:
        while any(n for (_, s), n in app.storage.counts().items() if s in LIVE_STATES):
            threading.Event().wait(0.01)
    finally:
        consumer.stop()
        thread.join(10)
    return consumer


def test_an_observer_gets_each_event_of_its_kinds_in_order() -> None:
    app = app_with_tasks()
    fine = app.tasks["fine"]()
    fails = app.tasks["fails"]()
    recorder = Recorder()
    consumer = run_consumer(app, recorder)
    kinds = {task: [e.kind for e in recorder.seen if e.id == task] for task in (fine.id, fails.id)}
    assert kinds[fine.id] == ["received", "started", "succeeded"]
    assert kinds[fails.id] == [
        "received", "started", "error", "retried", "received", "started", "error", "dead",
    ]  # fmt: skip
    succeeded = next(e for e in recorder.seen if e.kind == ev.SUCCEEDED)
    assert (succeeded.name, succeeded.queue, succeeded.attempt) == ("fine", "default", 1)
    assert succeeded.duration is not None and succeeded.duration >= 0
    dead = recorder.seen[-1]
    assert (dead.reason, dead.attempt, dead.errors) == ("error", 2, 1)
    assert consumer.events.counts[ev.SUCCEEDED] == 1 and consumer.events.counts[ev.ERROR] == 2


def test_nobody_listening_for_starts_leaves_the_attempt_without_a_hook() -> None:
    app = app_with_tasks()
    app.tasks["fine"]()
    app.tasks["fails"]()
    consumer = app.consumer(observers=[Recorder(ev.SUCCEEDED)])
    [lease] = app.storage.claim(["default"], 1, 30.0, "c")
    assert consumer._new_context(lease, 0.0).on_begin is None
    consumer.events.add(Recorder(ev.STARTED))
    [lease] = app.storage.claim(["default"], 1, 30.0, "c")
    assert consumer._new_context(lease, 0.0).on_begin is not None


def test_a_failing_observer_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Recorder):
        def observe(self, event: ev.TaskEvent) -> None:
            raise RuntimeError("observer broke")

    app = app_with_tasks()
    fine = app.tasks["fine"]()
    recorder = Recorder(ev.SUCCEEDED)
    run_consumer(app, Broken(ev.SUCCEEDED), recorder)
    assert [e.id for e in recorder.seen] == [fine.id]
    assert "event observer" in caplog.text and "observer broke" in caplog.text
    assert fine.get() == 1


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        ev.Events([Recorder("finished")])


@pytest.mark.parametrize(
    ("level", "logged"),
    [
        (logging.DEBUG, {"received", "started", "succeeded", "retried", "dead"}),
        (logging.INFO, {"succeeded", "retried", "dead"}),
        (logging.WARNING, {"retried", "dead"}),
        (logging.ERROR, {"dead"}),
    ],
)
def test_the_log_listens_for_the_kinds_its_level_shows(level: int, logged: set[str]) -> None:
    logger = logging.getLogger("scoter.tests.events")
    logger.setLevel(level)
    kinds = ev.LogObserver(logger).kinds
    assert kinds & {"received", "started", "succeeded", "retried", "dead"} == logged
    assert ev.ERROR not in kinds  # its retried or dead line says it


def test_a_json_line_is_one_object_with_the_event_fields() -> None:
    event = ev.TaskEvent(
        ev.RETRIED, "t-1", "bad\nname", "default", 2, delay=1.5, detail="ValueError('x\\ny')",
        errors=1,
    )  # fmt: skip
    record = logging.LogRecord("scoter.tasks", logging.WARNING, __file__, 1, "task %s", ("a\nb",),
                               None)  # fmt: skip
    record.task_event = event
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "task a\nb" and parsed["level"] == "WARNING"
    assert (parsed["event"], parsed["task_id"], parsed["task"]) == ("retried", "t-1", "bad\nname")
    assert (parsed["queue"], parsed["attempt"], parsed["delay_s"], parsed["errors"]) == (
        "default", 2, 1.5, 1,
    )  # fmt: skip


def test_a_rescued_task_is_reported_crashed_without_queue_or_attempt() -> None:
    from scoter.consumer.rescuer import Rescuer

    app = Scoter("rescue", "memory://")
    app.storage.enqueue([NewTask("r-1", "gone", "default", PAYLOAD)])
    app.storage.claim(["default"], 1, 0.01, "dead-consumer")
    recorder = Recorder(ev.CRASHED, ev.DEAD)
    threading.Event().wait(0.05)  # the lease expires
    Rescuer(app.storage, app.signals, 1.0, ev.Events([recorder])).tick()
    [crashed] = recorder.seen
    assert (crashed.kind, crashed.id, crashed.queue, crashed.attempt) == ("crashed", "r-1", "", 0)
    assert crashed.reason == "rescued"
    assert ev.describe(crashed).startswith("crashed: its holder's lease expired")
