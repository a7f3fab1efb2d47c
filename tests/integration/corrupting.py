"""Corrupting stored records by hand, as a bad migration, a manual edit, an eviction or a bug of
another program would, and checking that everything else goes on (DESIGN G11).

Each backend's records are written with its own client, bypassing scoter: SQLite with sqlite3,
Redis with HSET / HDEL / DEL / SET, PostgreSQL with UPDATE. A consumer runs in a thread of the
test process (the real `Consumer`, with short intervals); `scoter worker` processes are
started by the tests that need one.
"""

from __future__ import annotations

import importlib
import sqlite3
import sys
import textwrap
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from scoter import Message, Scoter
from scoter.cli import cli
from scoter.consumer.supervisor import Consumer
from scoter.states import State
from scoter.storage.base import Storage
from scoter.storage.redis import RedisStorage
from scoter.storage.sqlite import SQLiteStorage

GOOD_REASONS = ("corrupt", "undecodable", "unknown task")
"""How a corrupted task may end dead: its record is corrupt, or what it names cannot run."""
OUTAGE_LOG = "storage unavailable"
"""What the consumer logs when it takes an error for an outage: never for a bad record."""


def make_app(storage: Storage) -> Scoter:
    """An app with one task, `work(n) -> n`, on `storage`."""
    app = Scoter("corrupt", storage, result_ttl=None)

    @app.task(name="work")
    def work(n: int) -> int:
        return n

    return app


def enqueue_work(app: Scoter, count: int, prefix: str = "good", **fields: Any) -> list[str]:
    """Enqueue `work(i)` as task `prefix-i` for i below `count`; returns the ids."""
    messages = [Message("work", (i,), id=f"{prefix}-{i}", **fields) for i in range(count)]
    return [result.id for result in app.enqueue_many(messages)]


@contextmanager
def consuming(app: Scoter, **options: Any) -> Iterator[Consumer]:
    """A consumer of `app` running in a thread; stopped (and checked stopped) at the end."""
    settings: dict[str, Any] = {
        "workers": 2, "lease": 2.0, "poll": 0.05, "schedule_interval": 0.05,
        "rescue_interval": 0.05,
    }  # fmt: skip
    consumer = app.consumer(**{**settings, **options})
    failures: list[BaseException] = []

    def run() -> None:
        try:
            consumer.run()
        except BaseException as exc:  # reported by the test, which fails
            failures.append(exc)

    thread = threading.Thread(target=run, name="corrupt-consumer", daemon=True)
    thread.start()
    try:
        yield consumer
        assert thread.is_alive(), f"the consumer stopped by itself: {failures}"
    finally:
        consumer.stop(graceful=False)
        thread.join(10)
    assert not thread.is_alive(), "the consumer did not stop"
    assert not failures, failures


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def states(storage: Storage, ids: Sequence[str]) -> dict[str, State | None]:
    found = {i: storage.get(i) for i in ids}
    return {i: None if info is None else info.state for i, info in found.items()}


def all_done(storage: Storage, ids: Sequence[str]) -> bool:
    return all(s is State.DONE for s in states(storage, ids).values())


def outage_logs(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if OUTAGE_LOG in r.getMessage()]


# -- inspection through the command line -------------------------------------------------------


class Cli:
    """`scoter info | show | list | dead list` on one storage, in this process."""

    def __init__(self, folder: Path) -> None:
        self.module_name = f"corruptapp_{uuid.uuid4().hex[:10]}"
        source = "from scoter import Scoter\n\napp = Scoter('corruptcli', 'memory://')\n"
        (folder / f"{self.module_name}.py").write_text(textwrap.dedent(source))
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        self.module = importlib.import_module(self.module_name)

    def use(self, storage: Storage) -> None:
        self.module.app._storage = storage

    def run(self, *args: str) -> str:
        """The output of `scoter ARGS APP ...`; fails the test unless it exits 0."""
        command = [args[0], *args[1:2], f"{self.module_name}:app", *args[2:]]
        if args[0] != "dead":
            command = [args[0], f"{self.module_name}:app", *args[1:]]
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0, (command, result.output, result.exception)
        return result.output

    def inspect(self, task_ids: Sequence[str]) -> str:
        """Every inspection command, and `show` of each task: their output."""
        out = [self.run("info"), self.run("dead", "list")]
        out += [self.run("show", task_id) for task_id in task_ids]
        return "\n".join(out)

    def close(self) -> None:
        sys.modules.pop(self.module_name, None)


# -- SQLite -------------------------------------------------------------------------------------


def sqlite_set(storage: SQLiteStorage, task_id: str, column: str, value: object) -> None:
    with sqlite3.connect(storage.path) as db:
        changed = db.execute(
            f"UPDATE scoter_tasks SET {column} = ? WHERE id = ?", (value, task_id)
        ).rowcount
    assert changed == 1, f"no task {task_id}"


# -- Redis --------------------------------------------------------------------------------------


def redis_task_key(storage: RedisStorage, task_id: str, queue: str = "default") -> str:
    return f"{storage.prefix}:{{{queue}}}:t:{task_id}"


def redis_set_field(storage: RedisStorage, task_id: str, field: str, value: bytes | None) -> None:
    """Set one field of the task's hash, or delete it (None)."""
    key = redis_task_key(storage, task_id)
    assert storage.client.exists(key), f"no task {task_id}"
    if value is None:
        storage.client.hdel(key, field)
    else:
        storage.client.hset(key, field, value)


# -- PostgreSQL ---------------------------------------------------------------------------------


def _postgres(url: str) -> tuple[str, str]:
    """The conninfo and schema of a storage URL."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    schema = query.pop("schema")
    return parts._replace(query=urllib.parse.urlencode(query)).geturl(), schema


def postgres_set(url: str, task_id: str, column: str, value: object, cast: str = "") -> None:
    """UPDATE one column of the task's row, in the schema `url` names."""
    import psycopg

    conninfo, schema = _postgres(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        changed = conn.execute(
            f"UPDATE {schema}.tasks SET {column} = %(v)s{cast} WHERE id = %(id)s",  # type: ignore[arg-type]
            {"v": value, "id": task_id},
        ).rowcount
    assert changed == 1, f"no task {task_id}"


def postgres_clear(url: str) -> None:
    """Delete every task of the schema `url` names."""
    import psycopg

    conninfo, schema = _postgres(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {schema}.tasks")  # type: ignore[arg-type]
