"""Periodic tasks in real `scoter worker` processes, on each backend: three consumers run an
`every(seconds=1)` task, one is SIGTERMed and replaced midway, a fourth joins late — and each
slot runs exactly once, none in the middle left out."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import Env, drop_postgres_schema, postgres_schema_url, redis_prefix_url

from scoter.periodic import slot_of

TASK = "each_second"


def _url(backend: str, tmp_path: Path) -> str:
    if backend == "postgres":
        return postgres_schema_url()
    if backend == "redis":
        return redis_prefix_url()
    return f"sqlite:///{tmp_path / 'queue.db'}"


def _slots(env: Env) -> Counter[int]:
    """How many times each slot's task ran."""
    ran = Counter[int]()
    for task_id, *_ in env.runs("slot"):
        when = slot_of(TASK, task_id)
        assert when is not None, task_id
        ran[int(when.timestamp())] += 1
    return ran


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
def test_each_slot_runs_once_across_consumers(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Env(tmp_path, monkeypatch, _url(backend, tmp_path))
    env.app_path = "periodic_app:app"
    try:
        workers = [env.start() for _ in range(3)]
        began = time.time()
        env.wait_for(lambda: len(_slots(env)) >= 4, 20, "four slots")
        workers[0].send(signal.SIGTERM)
        assert workers[0].wait(30) == 0
        workers.append(env.start())  # its replacement
        time.sleep(2)
        workers.append(env.start())  # a fourth, late
        time.sleep(3)
        for worker in workers[1:]:
            worker.send(signal.SIGTERM)
        assert [worker.wait(30) for worker in workers[1:]] == [0] * 4
        ended = time.time()
        ran = _slots(env)
    finally:
        env.close()
        if backend == "postgres":
            drop_postgres_schema(env.url)

    assert [slot for slot, times in ran.items() if times > 1] == []
    first, last = min(ran), max(ran)
    assert sorted(ran) == list(range(first, last + 1)), "a slot in the middle was left out"
    assert first <= began + 2 and last >= ended - 3
    assert len(ran) >= 8
