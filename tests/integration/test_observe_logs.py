"""`scoter worker -v` logs one line per lifecycle event of each task, at its level, with the
task's id, name, attempt and queue; a banner when it starts and a line when it stops. Both
formats: text lines, and `--log-format json` (each line parsed).

One real worker per format (process executor, a real SQLite file) runs a task of each kind;
each test then reads one kind of line from its log.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Env

from scoter import Message
from scoter.states import State

TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([A-Z]+) (\S+): (.*)")


@dataclass
class Run:
    format: str
    records: list[dict[str, Any]]
    """level, logger, message, and in JSON the event's fields."""
    ids: dict[str, str]
    """The id of each task the run enqueued, by task name."""
    results: dict[str, Any]
    db: Path

    def about(self, task: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The task lines of `task`, of one event `kind` (read from the message in text)."""
        prefix = f"task {self.ids[task]} ({task}) "
        found = [r for r in self.records if r["message"].startswith(prefix)]
        if kind is None:
            return found
        words = KIND_WORDS[kind]
        return [r for r in found if r["message"][len(prefix) :].startswith(words)]

    def one(self, task: str, kind: str) -> dict[str, Any]:
        found = self.about(task, kind)
        assert found, (task, kind, [r["message"] for r in self.records])
        record = found[0]
        if self.format == "json":
            assert record["event"] == kind and record["task_id"] == self.ids[task]
            assert record["task"] == task
        return record


KIND_WORDS = {
    "received": "received",
    "started": "started",
    "succeeded": "succeeded in ",
    "retried": "failed, retrying in ",
    "interrupted": "interrupted",
    "crashed": "crashed",
    "lease_lost": "lease lost",
    "dead": "dead",
}


def _parse(text: str, log_format: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        if log_format == "json":
            records.append(json.loads(line))  # every line is one object
        elif match := TEXT_LINE.match(line):
            level, logger, message = match.groups()
            records.append({"level": level, "logger": logger, "message": message})
    return records


@pytest.fixture(scope="module", params=["text", "json"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    patch = pytest.MonkeyPatch()
    env = Env(tmp_path_factory.mktemp(f"logs-{request.param}"), patch)
    try:
        yield _run(env, request.param)
    finally:
        env.close()
        patch.undo()


def _run(env: Env, log_format: str) -> Run:
    import observe_app

    env.app_path = "observe_app:app"
    m = env.module
    results = {
        "sleepy": m.sleepy(0.0),
        "fail": m.fail(),
        "crash": m.crash(),
        "interrupted_once": observe_app.interrupted_once(),
        "loses_lease": observe_app.loses_lease(),
        "echo_headers": env.app.enqueue(Message("echo_headers", headers={"tenant": "t-1"})),
    }
    relative = f"sqlite:///{os.path.relpath(env.tmp / 'queue.db')}"  # the same file
    worker = env.start(
        "-v", "-k", "process", "-w", "2", "--log-format", log_format, ready=False, url=relative
    )
    for name, result in results.items():
        env.wait_for(lambda r=result: env.state(r.id) in (State.DONE, State.DEAD), 40, name)
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.log()
    ids = {name: result.id for name, result in results.items()}
    values = {name: r.get() for name, r in results.items() if env.state(r.id) is State.DONE}
    return Run(log_format, _parse(worker.log(), log_format), ids, values, env.tmp / "queue.db")


def test_banner_names_the_sqlite_file_by_absolute_path_and_the_options(run: Run) -> None:
    banner = next(r for r in run.records if r["message"].startswith("consumer "))
    assert banner["level"] == "INFO" and banner["logger"] == "scoter.consumer"
    assert f" on sqlite:///{run.db}: app integration, " in banner["message"]  # the worker
    assert run.db.is_absolute()  # was given it by a relative path
    for option in ("executor=process", "workers=2", "lease=30s", "drain_timeout=25s"):
        assert option in banner["message"]


def test_received_and_started_are_logged_at_debug(run: Run) -> None:
    for kind in ("received", "started"):
        record = run.one("sleepy", kind)
        assert record["level"] == "DEBUG" and record["logger"] == "scoter.tasks"
        assert record["message"].endswith("[attempt 1, queue default]")


def test_succeeded_is_logged_at_info_with_its_duration(run: Run) -> None:
    record = run.one("sleepy", "succeeded")
    assert record["level"] == "INFO"
    assert re.search(r"succeeded in \d+\.\d+ ms \[attempt 1, queue default\]$", record["message"])
    if run.format == "json":
        assert record["duration_ms"] >= 0 and record["queue"] == "default"
        assert record["attempt"] == 1


def test_a_retry_is_logged_at_warning_with_its_delay_and_error(run: Run) -> None:
    first, second = run.about("fail", "retried")
    assert first["level"] == "WARNING"
    assert "failed, retrying in 0.3 s: ValueError('this task always fails')" in first["message"]
    assert "retrying in 0.6 s" in second["message"] and "[attempt 2," in second["message"]
    if run.format == "json":
        assert (first["delay_s"], first["attempt"], first["errors"]) == (0.3, 1, 0)
        assert first["detail"] == "ValueError('this task always fails')"


def test_an_interruption_is_logged_at_warning(run: Run) -> None:
    record = run.one("interrupted_once", "interrupted")
    assert record["level"] == "WARNING"
    assert "interrupted, queued again: the task raised Interrupt" in record["message"]
    assert run.results["interrupted_once"] == 2


def test_a_crash_is_logged_at_warning_with_the_signal(run: Run) -> None:
    first, second = run.about("crash", "crashed")
    assert first["level"] == "WARNING"
    assert "its worker process was killed by SIGKILL (crash 1), queued again" in first["message"]
    assert "(crash 2), dead: max_crashes reached" in second["message"]


def test_a_lost_lease_is_logged_at_warning(run: Run) -> None:
    record = run.one("loses_lease", "lease_lost")
    assert record["level"] == "WARNING"
    assert "lease lost (ack): its ack was refused [attempt 1," in record["message"]
    if run.format == "json":
        assert record["reason"] == "ack"
    assert run.results["loses_lease"] == 2


def test_dead_is_logged_at_error_with_its_reason(run: Run) -> None:
    failed = run.one("fail", "dead")
    assert failed["level"] == "ERROR"
    assert "dead (error): failed for good after 3 error(s): ValueError(" in failed["message"]
    crashed = run.one("crash", "dead")
    assert crashed["level"] == "ERROR" and "dead (crashed): " in crashed["message"]
    if run.format == "json":
        assert (failed["reason"], crashed["reason"]) == ("error", "crashed")


def test_the_exit_line_says_why_and_what_became_of_the_tasks(run: Run) -> None:
    last = run.records[-1]
    assert last["level"] == "INFO" and last["logger"] == "scoter.consumer"
    assert re.fullmatch(
        r"stopped \(SIGTERM\) after \d+\.\d s: 4 succeeded, 3 failed, 2 retried, "
        r"1 interrupted, 2 crashed, 2 dead, 1 lease lost",
        last["message"],
    ), last["message"]


def test_headers_reach_the_task_as_ctx_headers(run: Run) -> None:
    assert run.results["echo_headers"] == {"tenant": "t-1"}
