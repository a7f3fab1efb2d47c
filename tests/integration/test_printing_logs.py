"""A consumer's log cannot be forged by what a task carries (docs/security.md).

A real `scoter worker` on a real SQLite file. Each record of its log starts with a timestamp
at the start of a line; a task name, id or error holding a newline must not start a line that
reads as a record of its own.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from scoter.states import State
from scoter.storage.base import NewTask
from scoter.storage.sqlite import SQLiteStorage

FORGED = "2099-01-01 00:00:00,000 ERROR scoter.consumer: forged"
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
"""How a record of `scoter worker`'s log starts."""

APP = """\
from scoter import SIGNAL_COMPLETE, Scoter

app = Scoter("logs", {url!r})


@app.signal(SIGNAL_COMPLETE)
def broken_receiver(signal, task):
    raise ValueError("receiver broke\\n" + {forged!r})


@app.task
def fine():
    return 1


@app.task(retries=1)
def fails():
    raise RuntimeError("first\\n" + {forged!r})
"""


def run_worker(tmp_path: Path, tasks: list[NewTask]) -> str:
    """Enqueue `tasks` and two of the app's own, run a worker until all are settled, then
    SIGTERM it; returns its log."""
    db = tmp_path / "q.db"
    source = APP.format(url=f"sqlite:///{db}", forged=FORGED)
    (tmp_path / "logs_app.py").write_text(textwrap.dedent(source))
    storage = SQLiteStorage(str(db))
    payload = b'{"args": [], "kwargs": {}}'
    extra = [
        NewTask("fine-1", "fine", "default", payload),
        NewTask("f-1", "fails", "default", payload),
    ]
    storage.enqueue([*tasks, *extra])
    storage.close()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("SCOTER_URL", None)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoter", "worker", "logs_app:app"], cwd=tmp_path, env=env,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while _unsettled(db) and proc.poll() is None:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return log_path.read_text()


def _unsettled(db: Path) -> int:
    storage = SQLiteStorage(str(db))
    try:
        counts = storage.counts()
    finally:
        storage.close()
    return sum(n for (_, state), n in counts.items() if state not in (State.DONE, State.DEAD))


def records(log: str) -> list[str]:
    """The lines of `log` that start a record."""
    return [line for line in log.splitlines() if RECORD.match(line)]


def test_a_newline_in_a_stored_name_or_id_cannot_forge_a_log_line(tmp_path: Path) -> None:
    hostile = [
        NewTask("n-1", f"ghost\n{FORGED}", "default", b"{}"),
        NewTask(f"id\n{FORGED}", "ghost", "default", b"{}"),
        NewTask("n-2", "ghost\r\u2028\x1b[2Jx", "default", b"{}"),
    ]
    log = run_worker(tmp_path, hostile)
    assert "consumer " in log
    assert not [r for r in records(log) if r.startswith("2099")], log
    assert "\x1b" not in log
    assert "(ghost\\n2099-01-01" in log  # the name is shown, escaped
    assert "task id\\n2099-01-01" in log
    assert "(ghost\\r\\u2028\\x1b[2Jx)" in log


def test_a_traceback_stays_readable_and_cannot_forge_a_line(tmp_path: Path) -> None:
    """A failing signal receiver is logged with its traceback: every line of it is kept, and
    each one after the first is indented under its record."""
    log = run_worker(tmp_path, [])
    assert not [r for r in records(log) if r.startswith("2099")], log
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if "signal receiver" in line)
    assert RECORD.match(lines[start])
    assert lines[start + 1] == "    Traceback (most recent call last):"
    assert "    ValueError: receiver broke" in lines
    assert f"    {FORGED}" in lines
