"""The read commands: --json on each, `show` with arguments and the whole traceback, output
piped whole, and `info --watch` in a real terminal (a pty) until Ctrl-C."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner, Result

from scoter import State
from scoter.cli import EXIT_USAGE, cli

SOURCE = """\
from scoter import Scoter, every

app = Scoter("readapp", "sqlite:///read.db")


@app.task
def boom(n, options=None):
    raise ValueError("kaboom " + "x" * 300)


@app.task
def add(a, b):
    return a + b


@app.periodic_task(every(seconds=10))
def often():
    pass
"""


@pytest.fixture
def mod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """An app on sqlite:///read.db, a path relative to tmp_path, the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.delenv("SCOTER_URL", raising=False)
    name = f"readapp_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(SOURCE)
    module = importlib.import_module(name)
    yield module
    module.app.storage.close()
    sys.modules.pop(name, None)


def ref(mod: ModuleType) -> str:
    return f"{mod.__name__}:app"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def dead_task(mod: ModuleType) -> str:
    options = {"every": dt.timedelta(minutes=5), "label": "\x1b[31mred"}
    task_id: str = mod.boom(7, options=options).id
    mod.app.run_pending()
    return task_id


def test_info_json_counts_each_state_and_names_the_file_by_its_absolute_path(
    mod: ModuleType, tmp_path: Path
) -> None:
    mod.add(1, 2)
    result = invoke("info", ref(mod), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["storage"] == f"sqlite:///{tmp_path / 'read.db'}"
    assert document["counts"]["default"] == {
        "scheduled": 0, "queued": 1, "running": 0, "done": 0, "dead": 0,
    }  # fmt: skip
    assert document["running"] == []
    text = invoke("info", ref(mod))
    assert f"readapp on sqlite:///{tmp_path / 'read.db'}" in text.output


def test_dead_list_json(mod: ModuleType) -> None:
    task_id = dead_task(mod)
    result = invoke("dead", "list", ref(mod), "--json")
    assert result.exit_code == 0, result.output
    [task] = json.loads(result.output)["dead"]
    assert (task["id"], task["name"], task["state"], task["reason"]) == (
        task_id, "boom", "dead", "error",
    )  # fmt: skip
    assert task["error"].startswith("Traceback (most recent call last):")
    assert "payload" not in task


def test_show_prints_the_arguments_escaped_and_the_whole_traceback(mod: ModuleType) -> None:
    task_id = dead_task(mod)
    result = invoke("show", ref(mod), task_id)
    assert result.exit_code == 0, result.output
    assert (
        "arguments: boom(7, options={'every': datetime.timedelta(seconds=300), "
        "'label': '\\x1b[31mred'})" in result.output
    )
    assert "\x1b" not in result.output
    assert "ValueError: kaboom " + "x" * 300 in result.output.splitlines()
    assert 'in boom\n    raise ValueError("kaboom " + "x" * 300)' in result.output


def test_show_json_has_the_decoded_arguments(mod: ModuleType) -> None:
    task_id = dead_task(mod)
    result = invoke("show", ref(mod), task_id, "--json")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output, "JSON escapes control characters"
    document = json.loads(result.output)
    assert document["args"] == [7]
    assert document["kwargs"] == {
        "options": {
            "every": {"__scoter__": "timedelta", "v": [0, 300, 0]}, "label": "\x1b[31mred",
        }
    }  # fmt: skip
    assert document["history"][0]["outcome"] == "error"


def test_periodic_json(mod: ModuleType) -> None:
    result = invoke("periodic", ref(mod), "--json")
    assert result.exit_code == 0, result.output
    [often] = json.loads(result.output)["periodic"]
    assert (often["task"], often["schedule"], often["last_slot"]) == ("often", "every 10 s", None)
    assert often["next_slot"] > time.time() - 10


def test_watch_and_json_do_not_go_together(mod: ModuleType) -> None:
    result = invoke("info", ref(mod), "--json", "--watch")
    assert result.exit_code == EXIT_USAGE
    assert "leave out --json" in result.stderr


def scoter(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SCOTER_URL", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "scoter", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_piped_output_keeps_whole_lines(mod: ModuleType, tmp_path: Path) -> None:
    dead_task(mod)
    done = scoter(tmp_path, "dead", "list", ref(mod))
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "boom" in line]
    assert len(rows) == 1 and "ValueError: kaboom " + "x" * 300 + " │" in rows[0]


def read_for(fd: int, seconds: float) -> bytes:
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            try:
                out += os.read(fd, 65536)
            except OSError:  # the process closed its end
                break
    return out


def test_info_watch_redraws_in_a_terminal_until_ctrl_c(mod: ModuleType, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SCOTER_URL"}
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "scoter", "info", ref(mod), "--watch", "--interval", "0.2"]
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdin=follower, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    try:
        before = read_for(leader, 1.5).decode(errors="replace")
        mod.add(1, 2)
        after = read_for(leader, 1.0).decode(errors="replace")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
        rest = read_for(leader, 0.3).decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert code == 0, before + after + rest
    assert "every 0.2 s; Ctrl-C to stop" in before
    assert "│ default │         0 │      0 │" in before
    assert "│ default │         0 │      1 │" in after, "the new task shows without a restart"
    assert "Traceback" not in before + after + rest
    assert mod.app.storage.counts() == {("default", State.QUEUED): 1}
