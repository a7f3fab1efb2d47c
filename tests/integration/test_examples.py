"""The examples are code: run them the way the README says, in a real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scoter import Scoter

ROOT = Path(__file__).parents[2]


def start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SCOTER_URL": url, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "scoter", "worker", "examples.tasks:app"]
    command += ["--drain-timeout", "1"]
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_examples_tasks_resume_from_their_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'examples.db'}"
    monkeypatch.setenv("SCOTER_URL", url)
    monkeypatch.syspath_prepend(str(ROOT))
    from examples import tasks

    tasks.app._storage, tasks.app._url = None, url
    app: Scoter = tasks.app
    first = start_worker(url, tmp_path / "first.log")
    try:
        assert tasks.add(2, 3).get(blocking=True, timeout=15) == 5
        counting = tasks.count_to(30)
        time.sleep(1.0)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
        info = app.storage.get(counting.id)
        assert info is not None and info.interruptions == 1
        second = start_worker(url, tmp_path / "second.log")
        assert counting.get(blocking=True, timeout=15) == 30
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
    finally:
        for proc in (first, locals().get("second")):
            if isinstance(proc, subprocess.Popen) and proc.poll() is None:
                proc.kill()
        app.storage.close()
