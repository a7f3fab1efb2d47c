"""Task and queue names and task ids cannot reach into another task's Redis keys
(docs/security.md): a name that could is refused with a clear error, and names that look
alike are stored apart. Real Redis; the worker's refusal of a bad queue in a real process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import redis_prefix_url

from scoter import Message, Scoter, State
from scoter.cli import EXIT_CONFIG
from scoter.storage.redis import RedisStorage


@pytest.fixture
def app() -> Iterator[Scoter]:
    app = Scoter("names", redis_prefix_url())
    yield app
    storage = app.storage
    assert isinstance(storage, RedisStorage)
    for key in storage.client.scan_iter(f"{storage.prefix}:*"):
        storage.client.delete(key)
    storage.close()


def keys_of(app: Scoter) -> list[str]:
    storage = app.storage
    assert isinstance(storage, RedisStorage)
    return sorted(k.decode() for k in storage.client.scan_iter(f"{storage.prefix}:*"))


def test_a_queue_and_an_id_that_would_share_a_key_are_refused(app: Scoter) -> None:
    """Queue `x}:t:y` has the ready set `P:{x}:t:y}:ready`, the hash of task `y}:ready` in
    queue `x`: enqueueing both used to write one key as two things."""
    with pytest.raises(ValueError, match=r"bad queue name 'x\}:t:y': use 1 to 200 letters"):
        app.enqueue(Message("job", id="a", queue="x}:t:y"))
    with pytest.raises(ValueError, match=r"bad task id 'y\}:ready': use 1 to 200 ASCII"):
        app.enqueue(Message("job", id="y}:ready", queue="x"))
    assert keys_of(app) == []


def test_names_that_look_alike_are_stored_apart(app: Scoter) -> None:
    ran: list[tuple[str, str]] = []

    @app.task(name="job")
    def job(label: str) -> None:
        ran.append(("job", label))

    placed = [("x", "y:ready"), ("x:t:y", "ready"), ("x:t", "y"), ("t", "x:t:y")]
    for queue, task_id in placed:
        app.enqueue(Message("job", (f"{queue}/{task_id}",), id=task_id, queue=queue))
    assert app.run_pending([q for q, _ in placed]) == len(placed)
    assert sorted(ran) == sorted(("job", f"{q}/{i}") for q, i in placed)
    for queue, task_id in placed:
        info = app.storage.get(task_id)
        assert info is not None
        assert (info.queue, info.state) == (queue, State.DONE)
    queue_keys = [k.split("{", 1)[1].split("}:", 1) for k in keys_of(app) if "{" in k]
    assert {queue for queue, _ in queue_keys} == {q for q, _ in placed}
    task_keys = sorted((queue, rest[2:]) for queue, rest in queue_keys if rest.startswith("t:"))
    assert task_keys == sorted(placed)


def test_the_worker_refuses_a_bad_queue_with_exit_3(tmp_path: Path) -> None:
    source = f"""\
        from scoter import Scoter

        app = Scoter("names", {f"sqlite:///{tmp_path / 'q.db'}"!r})
        """
    (tmp_path / "names_app.py").write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "scoter", "worker", "names_app:app", "-Q", "mail", "-Q", "x}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "bad queue name 'x}'" in done.stderr
    assert "Traceback" not in done.stderr
