"""The command line: loading apps, exit codes, `info` and the dead-letter commands."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

import scoter.cli_read
from scoter import Message, State
from scoter.cli import EXIT_APP, EXIT_CONFIG, EXIT_USAGE, PIPED_WIDTH, cli
from scoter.storage.base import NewTask

APP_SOURCE = """\
from scoter import Scoter

app = Scoter("cliapp", {url!r})


@app.task
def boom(n):
    raise ValueError(f"kaboom {{n}}")


@app.task
def add(a, b):
    return a + b
"""


@dataclass
class AppModule:
    name: str
    module: ModuleType
    path: Path

    @property
    def ref(self) -> str:
        return f"{self.name}:app"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory and on sys.path, both restored afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.delenv("SCOTER_URL", raising=False)
    return tmp_path


def write_module(directory: Path, source: str) -> str:
    """A module with a fresh name (so no test sees another's import); returns the name."""
    name = f"cliapp_{uuid.uuid4().hex[:10]}"
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return name


@pytest.fixture
def app_module(workdir: Path) -> Iterator[AppModule]:
    """An app module on a SQLite file in tmp_path, imported here as the CLI will import it."""
    name = write_module(workdir, APP_SOURCE.format(url=f"sqlite:///{workdir / 'cli.db'}"))
    module = importlib.import_module(name)
    yield AppModule(name, module, workdir)
    module.app.storage.close()
    sys.modules.pop(name, None)


@dataclass
class DeadTasks:
    errors: list[str]
    unknown: str
    done: str

    @property
    def all(self) -> list[str]:
        return [*self.errors, self.unknown]


@pytest.fixture
def dead(app_module: AppModule) -> DeadTasks:
    """Two tasks dead of errors, one dead as an unknown task, one done."""
    mod = app_module.module
    errors = [mod.boom(1).id, mod.boom(2).id]
    unknown = mod.app.enqueue(Message("ghost.task")).id
    done = mod.add(1, 2).id
    assert mod.app.run_pending() == 4
    assert {mod.app.storage.get(i).state for i in [*errors, unknown]} == {State.DEAD}
    return DeadTasks(errors, unknown, done)


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render tables as piped output does, whatever terminal runs the tests."""
    monkeypatch.setattr(scoter.cli_read, "console", Console(width=PIPED_WIDTH))


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def run_scoter(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m scoter ARGS` in a real process, as a user's shell runs it."""
    environment = {k: v for k, v in os.environ.items() if k != "SCOTER_URL"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "scoter", *args],
        cwd=cwd, env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def table_rows(output: str) -> list[list[str]]:
    """The body cells of the rich tables in `output`."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.strip().startswith("│")
    ]


# -- loading the app: exit codes without tracebacks -------------------------------------------


def test_worker_with_a_missing_module_exits_4_with_one_line(workdir: Path) -> None:
    done = run_scoter(workdir, "worker", "nosuch.module:app")
    assert done.returncode == EXIT_APP
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "nosuch.module" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_attribute_that_is_not_a_scoter_app_exits_4(app_module: AppModule) -> None:
    done = run_scoter(app_module.path, "worker", f"{app_module.name}:add")
    assert done.returncode == EXIT_APP
    assert "not a Scoter app" in done.stderr
    assert "Traceback" not in done.stderr
    missing = invoke("info", f"{app_module.name}:nothing_here")
    assert missing.exit_code == EXIT_APP
    assert "nothing_here" in missing.stderr


def test_module_that_fails_to_import_exits_4(workdir: Path) -> None:
    name = write_module(workdir, "raise RuntimeError('broken at import')\n")
    result = invoke("info", f"{name}:app")
    assert result.exit_code == EXIT_APP
    assert "broken at import" in result.stderr
    assert isinstance(result.exception, SystemExit)


def test_module_without_attribute_finds_its_only_app(
    app_module: AppModule, dead: DeadTasks
) -> None:
    result = invoke("dead", "list", app_module.name)
    assert result.exit_code == 0, result.output


def test_bad_storage_url_exits_3(workdir: Path) -> None:
    name = write_module(
        workdir, "from scoter import Scoter\napp = Scoter('x', 'bogus://nowhere')\n"
    )
    done = run_scoter(workdir, "worker", f"{name}:app")
    assert done.returncode == EXIT_CONFIG
    assert "bogus://nowhere" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_url_exits_3_without_the_password(workdir: Path) -> None:
    source = "from scoter import Scoter\napp = Scoter('x', 'bogus://me:hunter2@localhost/0')\n"
    name = write_module(workdir, source)
    result = invoke("info", f"{name}:app")
    assert result.exit_code == EXIT_CONFIG
    assert "me:***@localhost" in result.stderr
    assert "hunter2" not in result.output + result.stderr


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert "0.1.0" in result.output


# -- info -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("wide_console")
def test_info_prints_counts_per_queue_and_state(app_module: AppModule, dead: DeadTasks) -> None:
    app_module.module.add(5, 5)
    result = invoke("info", app_module.ref)
    assert result.exit_code == 0, result.output
    assert "cliapp on" in result.output
    assert "sqlite:///" in result.output
    header = ["queue", *(state.value for state in State)]
    assert all(column in result.output for column in header)
    rows = {row[0]: row[1:] for row in table_rows(result.output)}
    counts = dict(zip(header[1:], rows["default"], strict=True))
    assert counts == {"scheduled": "0", "queued": "1", "running": "0", "done": "1", "dead": "3"}


@pytest.mark.usefixtures("wide_console")
def test_info_lists_running_tasks_with_their_holder(app_module: AppModule) -> None:
    task_id = app_module.module.add(1, 1).id
    assert app_module.module.app.storage.claim(["default"], 1, 30.0, "host:123:abc")
    result = invoke("info", app_module.ref)
    assert result.exit_code == 0, result.output
    assert "running" in result.output
    running = [row for row in table_rows(result.output) if row[0] == task_id]
    assert running and running[0][1:6] == ["add", "1", "0/0/0", "", "host:123:abc"]


@pytest.mark.usefixtures("wide_console")
def test_info_of_an_empty_app(app_module: AppModule) -> None:
    result = invoke("info", app_module.ref)
    assert result.exit_code == 0
    assert table_rows(result.output) == [["default", "0", "0", "0", "0", "0"]]


# -- dead list / retry / purge ----------------------------------------------------------------


@pytest.mark.usefixtures("wide_console")
def test_dead_list_shows_each_dead_task_with_reason_and_last_error(
    app_module: AppModule, dead: DeadTasks
) -> None:
    result = invoke("dead", "list", app_module.ref)
    assert result.exit_code == 0, result.output
    rows = {row[0]: row for row in table_rows(result.output)}
    assert set(rows) == set(dead.all)
    for task_id, n in zip(dead.errors, (1, 2), strict=True):
        assert rows[task_id][1:4] == ["boom", "default", "error"]
        assert rows[task_id][5] == f"ValueError: kaboom {n}"
    assert rows[dead.unknown][1:4] == ["ghost.task", "default", "unknown task"]
    assert dead.done not in result.output


@pytest.mark.usefixtures("wide_console")
def test_dead_list_filters(app_module: AppModule, dead: DeadTasks) -> None:
    other = invoke("dead", "list", app_module.ref, "--queue", "other")
    assert other.exit_code == 0
    assert "no dead tasks" in other.output
    limited = invoke("dead", "list", app_module.ref, "--limit", "1")
    assert [row[0] for row in table_rows(limited.output)] == dead.errors[:1]


def test_dead_list_shows_whole_ids_in_80_columns(app_module: AppModule, dead: DeadTasks) -> None:
    done = run_scoter(app_module.path, "dead", "list", app_module.ref, COLUMNS="80")
    assert done.returncode == 0, done.stderr
    for task_id in dead.all:
        assert task_id in done.stdout


def test_dead_list_when_nothing_is_dead(app_module: AppModule) -> None:
    result = invoke("dead", "list", app_module.ref)
    assert result.exit_code == 0
    assert "no dead tasks" in result.output


def test_dead_retry_by_id(app_module: AppModule, dead: DeadTasks) -> None:
    storage = app_module.module.app.storage
    result = invoke("dead", "retry", app_module.ref, dead.errors[0], dead.unknown, "no-such-id")
    assert result.exit_code == 0, result.output
    assert "queued 2 dead task(s) again" in result.output
    assert storage.get(dead.errors[0]).state is State.QUEUED
    assert storage.get(dead.unknown).state is State.QUEUED
    assert storage.get(dead.errors[1]).state is State.DEAD


def test_dead_retry_all_runs_them_again(app_module: AppModule, dead: DeadTasks) -> None:
    app = app_module.module.app
    result = invoke("dead", "retry", app_module.ref, "--all")
    assert result.exit_code == 0, result.output
    assert "queued 3 dead task(s) again" in result.output
    assert {app.storage.get(i).state for i in dead.all} == {State.QUEUED}
    assert app.run_pending() == 3
    retried = app.storage.get(dead.errors[0])
    assert (retried.state, retried.attempts) == (State.DEAD, 2)


def test_dead_purge_by_id_and_all(app_module: AppModule, dead: DeadTasks) -> None:
    storage = app_module.module.app.storage
    one = invoke("dead", "purge", app_module.ref, dead.unknown, dead.done)
    assert one.exit_code == 0, one.output
    assert "purged 1 dead task(s)" in one.output
    assert storage.get(dead.unknown) is None
    assert storage.get(dead.done) is not None, "purging dead tasks must not touch done ones"

    rest = invoke("dead", "purge", app_module.ref, "--all")
    assert "purged 2 dead task(s)" in rest.output
    assert all(storage.get(i) is None for i in dead.errors)
    assert "no dead tasks" in invoke("dead", "list", app_module.ref).output


@pytest.mark.parametrize("command", ["retry", "purge"])
@pytest.mark.parametrize("extra", [[], ["some-id", "--all"]])
def test_dead_retry_and_purge_need_ids_or_all(
    app_module: AppModule, dead: DeadTasks, command: str, extra: list[str]
) -> None:
    result = invoke("dead", command, app_module.ref, *extra)
    assert result.exit_code == EXIT_USAGE
    assert "--all" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert {app_module.module.app.storage.get(i).state for i in dead.all} == {State.DEAD}


def test_show_prints_every_attempt_and_the_traceback(
    app_module: AppModule, dead: DeadTasks, wide_console: None
) -> None:
    result = invoke("show", app_module.ref, dead.errors[0])
    assert result.exit_code == 0, result.output
    assert "dead" in result.output and "errors 1, interruptions 0, crashes 0" in result.output
    assert "ValueError: kaboom 1" in result.output
    assert "Traceback" in result.output


def test_show_of_an_unknown_id_exits_5(app_module: AppModule) -> None:
    result = invoke("show", app_module.ref, "nope")
    assert result.exit_code == 5
    assert "no task nope" in result.stderr


def test_show_says_a_task_is_a_suspect(app_module: AppModule, wide_console: None) -> None:
    storage = app_module.module.app.storage
    storage.enqueue([NewTask(f"s{i}", "noop", "default", b"[]") for i in range(2)])
    assert len(storage.claim(["default"], 2, 30.0, "gone")) == 2
    assert [r.charged for r in storage.rescue(time.time() + 60)] == [False, False]

    result = invoke("show", app_module.ref, "s0")
    assert result.exit_code == 0, result.output
    assert "suspect" in result.output and "runs alone" in result.output
    assert "not charged" in result.output


PERIODIC_SOURCE = """\
from scoter import Scoter, crontab, every

app = Scoter("cliapp", {url!r})


@app.periodic_task(every(seconds=10))
def often():
    pass


@app.periodic_task(crontab(minute="0", hour="3\\x1b[31m,4"))
def nightly():
    pass
"""


@pytest.mark.usefixtures("wide_console")
def test_periodic_lists_each_schedule_with_its_slots(workdir: Path) -> None:
    name = write_module(workdir, PERIODIC_SOURCE.format(url=f"sqlite:///{workdir / 'p.db'}"))
    module = importlib.import_module(name)
    try:
        from scoter.consumer.scheduler import enqueue_due_slots

        enqueue_due_slots(module.app, module.app.storage, time.time())
        result = invoke("periodic", f"{name}:app")
    finally:
        module.app.storage.close()
        sys.modules.pop(name, None)
    assert result.exit_code == 0, result.output
    rows = {row[0]: row[1:] for row in table_rows(result.output)}
    assert rows["often"][0] == "every 10 s"
    assert rows["often"][-1] == "queued"
    assert "\\x1b[31m" in result.output and "\x1b" not in result.output
    assert rows["nightly"][-1] in ("", "not enqueued")  # a new daily schedule waits for 03:00


def test_periodic_says_when_there_are_none(app_module: AppModule) -> None:
    result = invoke("periodic", app_module.ref)
    assert result.exit_code == 0, result.output
    assert "has no periodic tasks" in result.output
