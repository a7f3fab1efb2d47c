"""The examples are code: run them the way the README says, in a real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scoter import Scoter, State

ROOT = Path(__file__).parents[2]


def start_worker(url: str, log: Path, app: str = "examples.tasks:app") -> subprocess.Popen[bytes]:
    env = {**os.environ, "SCOTER_URL": url, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "scoter", "worker", app]
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


def test_examples_periodic_runs_each_slot_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two consumers of examples/periodic.py, as the README shows it: each slot is logged once."""
    url = f"sqlite:///{tmp_path / 'periodic.db'}"
    log = tmp_path / "pulse.log"
    monkeypatch.setenv("PULSE_LOG", str(log))
    workers = [
        start_worker(url, tmp_path / f"periodic-{n}.log", "examples.periodic:app") for n in range(2)
    ]
    try:
        deadline = time.monotonic() + 20
        while len(_lines(log)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert [worker.wait(timeout=10) for worker in workers] == [0, 0]
    slots = _lines(log)
    assert len(slots) >= 3 and len(set(slots)) == len(slots), slots
    assert snippet("periodic") in (ROOT / "examples" / "periodic.py").read_text()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def snippet(name: str) -> str:
    """The README's code block that follows `<!-- example: name -->`."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split(f"<!-- example: {name} -->", 1)[1].split("```python\n", 1)[1]
    return block.split("```", 1)[0]


def test_examples_flows_run_a_pipeline_and_a_chord(tmp_path: Path) -> None:
    """examples/flows.py as its docstring says: a worker, then `python -m examples.flows`."""
    url = f"sqlite:///{tmp_path / 'flows.db'}"
    worker = start_worker(url, tmp_path / "flows-worker.log", "examples.flows:app")
    try:
        env = {**os.environ, "SCOTER_URL": url}
        run = [sys.executable, "-m", "examples.flows"]
        done = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "order 1: 12.50 EUR", "today", "order 2: 25.00 EUR", "order 3: 37.50 EUR",
        "order 4: 50.00 EUR",
    ]  # fmt: skip
    assert snippet("flows") in (ROOT / "examples" / "flows.py").read_text()


def test_examples_expiry_expires_and_revokes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/expiry.py as the README shows it: an expired reminder and a revoked one never
    run, the others do."""
    url = f"sqlite:///{tmp_path / 'time.db'}"
    log = tmp_path / "remind.log"
    monkeypatch.setenv("SCOTER_URL", url)
    monkeypatch.setenv("REMIND_LOG", str(log))
    monkeypatch.syspath_prepend(str(ROOT))
    from examples import expiry as example

    example.app._storage, example.app._url = None, url
    expired = example.remind.schedule(("ann",), expires=0.3)
    revoked, kept = example.remind("bob"), example.remind("cy")
    assert revoked.revoke() is State.QUEUED
    time.sleep(0.5)
    worker = start_worker(url, tmp_path / "time.log", "examples.expiry:app")
    try:
        deadline = time.monotonic() + 20
        while kept.state is not State.DONE and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
        example.app.storage.close()
    assert _lines(log) == ["cy"]
    assert [example.app.storage.get(r.id).reason for r in (expired, revoked)] == [  # type: ignore[union-attr]
        "expired", "revoked",
    ]  # fmt: skip
    assert snippet("expiry") in (ROOT / "examples" / "expiry.py").read_text()


def test_examples_coordination_keeps_its_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two consumers of examples/coordination.py and its producer, as the README shows them:
    one refresh, two transcodes at most at once, five calls at most in a second, and the
    exports one after the other."""
    url = f"sqlite:///{tmp_path / 'coordination.db'}"
    log = tmp_path / "coordination.log"
    env = {**os.environ, "SCOTER_URL": url, "COORDINATION_LOG": str(log)}
    monkeypatch.setenv("COORDINATION_LOG", str(log))
    workers = [
        start_worker(url, tmp_path / f"coordination-{n}.log", "examples.coordination:app")
        for n in range(2)
    ]
    try:
        producer = subprocess.run(
            [sys.executable, "-m", "examples.coordination"], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert [worker.wait(timeout=10) for worker in workers] == [0, 0]
    assert producer.returncode == 0, producer.stderr
    events = [line.split(" ", 1) for line in _lines(log)]
    assert [e for _, e in events if e.startswith("refresh")] == ["refresh 42"]
    running = most = 0
    for _, event in events:
        running += event.endswith(" start") - event.endswith(" end")
        most = max(most, running)
    assert most <= 2
    calls = sorted(float(at) for at, e in events if e.startswith("call"))
    assert len(calls) == 10 and calls[-1] - calls[0] >= 0.9, "10 calls at 5/s take a second"
    assert [e for _, e in events if e == "export"] == ["export", "export"]
    assert snippet("coordination") in (ROOT / "examples" / "coordination.py").read_text()
