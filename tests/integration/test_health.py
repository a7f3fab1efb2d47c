"""Health: a worker's /livez and /readyz, and `scoter check`, against a live storage and one
that stopped answering (Redis behind a proxy that is then closed), and through a drain."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HERE, Env, Worker, redis_prefix_url
from proxy import PartitionProxy

from scoter.cli import EXIT_UNAVAILABLE


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def health_base(worker: Worker) -> str:
    found = re.search(r"health on (http://\S+)/livez", worker.log())
    assert found, worker.log()
    return found[1]


def check(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(HERE), "SCOTER_URL": url}
    command = [sys.executable, "-m", "scoter", "check", "integration_app:app", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


@pytest.fixture
def proxied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Env, str, PartitionProxy]]:
    url = redis_prefix_url()
    parts = urllib.parse.urlsplit(url)
    proxy = PartitionProxy((parts.hostname or "127.0.0.1", parts.port or 0))
    env = Env(tmp_path, monkeypatch, url)
    yield env, proxy.rewrite(url), proxy
    proxy.close()
    env.close()


def test_live_and_ready_while_the_storage_answers_not_ready_once_it_stops(
    proxied: tuple[Env, str, PartitionProxy],
) -> None:
    env, url, proxy = proxied
    worker = env.start("--health-port", "0", url=url)
    base = health_base(worker)
    assert get(f"{base}/livez")[0] == 200
    env.wait_for(lambda: get(f"{base}/readyz")[0] == 200, 10, "the worker to be ready")
    assert get(f"{base}/readyz") == (200, "ok: storage answers\n")
    assert get(f"{base}/other")[0] == 404
    answered = check(url, "--worker", base.removeprefix("http://"))
    assert answered.returncode == 0, answered.stderr
    assert "answers; the worker at" in answered.stdout and "is live and ready" in answered.stdout

    proxy.close()  # the storage stops answering: connections are refused
    env.wait_for(lambda: get(f"{base}/readyz")[0] == 503, 10, "readiness to fail")
    said = get(f"{base}/readyz")[1]
    assert said.startswith("unavailable: storage redis://") and "does not answer" in said
    assert get(f"{base}/livez")[0] == 200  # an outage is no reason to restart the worker
    refused = check(url)
    assert refused.returncode == EXIT_UNAVAILABLE
    [line] = refused.stderr.splitlines()  # one line, no traceback
    assert line.startswith("error: storage redis://127.0.0.1:") and "does not answer" in line
    busy = check(env.url, "--worker", base.removeprefix("http://"))
    assert busy.returncode == EXIT_UNAVAILABLE
    assert "is not ready: unavailable: storage redis://" in busy.stderr


def test_a_draining_worker_is_live_but_not_ready(env: Env) -> None:
    worker = env.start("--health-port", "0", "--drain-timeout", "5")
    base = health_base(worker)
    result = env.module.sleepy(3.0)
    env.wait_for(lambda: env.runs("started"), 10, "the task to start")
    worker.send(signal.SIGTERM)
    env.wait_for(lambda: get(f"{base}/readyz")[0] == 503, 5, "readiness to fail")
    assert get(f"{base}/readyz")[1] == "unavailable: stopping (SIGTERM)\n"
    assert get(f"{base}/livez")[0] == 200
    assert worker.wait(timeout=10) == 0
    assert result.get() == worker.pid  # drained, not interrupted


def test_check_a_live_sqlite_storage_and_a_worker_that_is_gone(env: Env) -> None:
    answered = check(env.url)
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip() == f"ok: {env.url} answers"
    gone = check(env.url, "--worker", "127.0.0.1:9")
    assert gone.returncode == EXIT_UNAVAILABLE
    assert gone.stderr.startswith("error: cannot reach the worker at 127.0.0.1:9: ")
