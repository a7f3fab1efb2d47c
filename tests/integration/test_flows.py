"""Pipelines and a chord in real `scoter worker` processes on SQLite, Redis and PostgreSQL,
while consumers are SIGKILLed: every flow finishes, and every step is stored exactly once — a
step stored twice would start over from attempt 1, so each (step, attempt) the tasks record is
unique, and each step's record counts every attempt recorded; the storage holds the steps and
nothing more."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import Env, Worker, drop_postgres_schema, postgres_schema_url, redis_prefix_url

from scoter import ChordResult, ResultGroup, State, group

PIPELINES = 60
MEMBERS = 12
KILLS = 3
CASES = [("sqlite", "thread"), ("redis", "thread"), ("postgres", "process")]


def _url(backend: str, tmp_path: Path) -> str:
    if backend == "postgres":
        return postgres_schema_url()
    if backend == "redis":
        return redis_prefix_url()
    return f"sqlite:///{tmp_path / 'queue.db'}"


@pytest.mark.parametrize(("backend", "executor"), CASES)
def test_pipelines_and_a_chord_finish_through_sigkills_with_each_step_stored_once(
    backend: str, executor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Env(tmp_path, monkeypatch, _url(backend, tmp_path))
    env.app_path = "flows_app:app"
    try:
        from flows_app import gather, step

        options = ("-k", executor, "-w", "4", "--lease", "2")
        workers = [env.start(*options) for _ in range(3)]
        pipelines = [env.app.enqueue(step.s(i).then(step).then(step)) for i in range(PIPELINES)]
        chord = env.app.enqueue(group([step.s(100 * j) for j in range(MEMBERS)]).then(gather))
        _kill_while_running(env, workers, options)
        _check(env, pipelines, chord)
    finally:
        env.close()
        if backend == "postgres":
            drop_postgres_schema(env.url)


def _kill_while_running(env: Env, workers: list[Worker], options: tuple[str, ...]) -> None:
    """SIGKILL a consumer about every second, KILLS times, each replaced at once."""
    env.wait_for(lambda: len(env.runs("step")) >= 12, 30, "the first steps")
    for _ in range(KILLS):
        time.sleep(random.uniform(0.8, 1.2))
        doomed = workers.pop(random.randrange(len(workers)))
        doomed.send(signal.SIGKILL)
        doomed.wait(10)
        workers.append(env.start(*options))


def _check(env: Env, pipelines: list[ResultGroup], chord: ChordResult) -> None:
    for i, results in enumerate(pipelines):
        assert results.get(blocking=True, timeout=60) == [i + 1, i + 2, i + 3]
    expected = [100 * j + 1 for j in range(MEMBERS)]
    assert chord.get(blocking=True, timeout=60) == expected
    assert chord.results.get() == expected

    steps = [*(i for r in pipelines for i in r.ids), *chord.results.ids, chord.id]
    runs = Counter((task_id, attempt) for task_id, _, _, attempt, _ in env.runs("step"))
    assert [run for run, times in runs.items() if times > 1] == []
    assert {task_id for task_id, _ in runs} == set(steps)
    for task_id in steps:
        info = env.app.storage.get(task_id)
        assert info is not None and info.state is State.DONE
        # One record since the step was stored: its attempts count every run recorded.
        assert info.attempts == max(a for t, a in runs if t == task_id)
        assert [h["attempt"] for h in info.history] == list(range(1, info.attempts + 1))
    assert env.app.storage.counts() == {("default", State.DONE): len(steps)}
    assert env.app.storage.chord_info(chord.id) is None
    assert sum(attempt > 1 for _, attempt in runs) > 0, "no consumer died during a step"
