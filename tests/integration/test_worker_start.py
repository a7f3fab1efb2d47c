"""What a worker says as it starts, in real `scoter worker` processes: async def tasks it cannot
run, a memory:// storage no other process reaches, and the SQLite file by its absolute path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import HERE, Env

from scoter.consumer.attempt import NEEDS_ASYNCIO
from scoter.states import State


def test_a_thread_worker_names_its_async_tasks_and_they_go_dead_saying_asyncio(env: Env) -> None:
    worker = env.start("-w", "1")
    log = worker.log()
    assert "are async def: a thread worker cannot run them" in log
    assert "exits_async" in log and "polite_async" in log
    assert "run them on a worker started with -k asyncio -Q default" in log

    task_id = env.module.exits_async(0).id  # retries=1: still dead at its first attempt
    env.wait_for(lambda: env.state(task_id) is State.DEAD, 15, "the async task dead")
    info = env.app.storage.get(task_id)
    assert info is not None and (info.reason, info.attempts) == (NEEDS_ASYNCIO, 1)
    assert info.error is not None and "-k asyncio" in info.error
    assert "JSON" not in info.error and "pickle" not in info.error

    asyncio_worker = env.start("-k", "asyncio", "-w", "1")
    assert "are async def" not in asyncio_worker.log()
    for w in (worker, asyncio_worker):
        w.send(signal.SIGTERM)
        assert w.wait(timeout=15) == 0


def start(tmp_path: Path, url: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`scoter worker integration_app:app` on `url`, run from `tmp_path`."""
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "SCOTER_URL": url, "PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1"}
    env["SCOTER_TEST_RUNS"] = str(tmp_path / "runs.db")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoter", "worker", "integration_app:app", "-k", "asyncio"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 15
    while "consumer " not in log_path.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.02)
    return proc, log_path


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_a_memory_worker_warns_that_no_other_process_can_reach_it(tmp_path: Path) -> None:
    proc, log_path = start(tmp_path, "memory://")
    try:
        warning = "the storage is memory://, inside this worker's process: no producer in "
        assert warning + "another process can reach it" in log_path.read_text()
    finally:
        stop(proc)


def test_a_worker_on_a_relative_sqlite_url_names_the_file_by_its_absolute_path(
    tmp_path: Path,
) -> None:
    proc, log_path = start(tmp_path, "sqlite:///queue.db")
    try:
        assert f"sqlite:///{tmp_path / 'queue.db'}" in log_path.read_text()
        assert (tmp_path / "queue.db").exists()
    finally:
        stop(proc)
