"""Locks, limits and unique tasks in real `scoter worker` processes — three consumers of four
workers each — on SQLite, Redis and PostgreSQL: fifty enqueues of one unique task from five
processes make one task; a `concurrency=2` task never has more than two attempts running
(from the tasks' own start and end times); `rate_limit="20/s"` never starts more than about 20
in any second; a lock held by a consumer that is SIGKILLed is taken by another within the
lease and a few seconds."""

from __future__ import annotations

import multiprocessing
import signal
import time
from pathlib import Path

import pytest
from conftest import Env, drop_postgres_schema, postgres_schema_url, redis_prefix_url

from scoter.states import State

LEASE_S = 2.0
TAKEOVER_SLACK_S = 3.0
"""A dead holder's lock is taken within its lease plus this."""
PAIR_TASKS, PAIR_S = 12, 0.2
PACED_TASKS = 45
RATE, RATE_SLACK = 20, 3
"""At most RATE claims in any second, and so about as many starts: a claimed task starts a few
milliseconds later, when its worker thread gets the CPU (the machine may be busy)."""


def _url(backend: str, tmp_path: Path) -> str:
    if backend == "postgres":
        return postgres_schema_url()
    if backend == "redis":
        return redis_prefix_url()
    return f"sqlite:///{tmp_path / 'queue.db'}"


def _intervals(env: Env, ids: set[str]) -> list[tuple[float, float]]:
    """(start, end) of each attempt of the tasks `ids`, by their own records."""
    starts = {(i, a): at for i, e, _, a, at in env.runs("started") if i in ids}
    ends = {(i, a): at for i, e, _, a, at in env.runs("finished") if i in ids}
    return [(at, ends[key]) for key, at in starts.items() if key in ends]


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def _most_in_a_second(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times)), default=0)


def _unique_from_processes(env: Env) -> set[str]:
    """Five spawned processes enqueue `once("daily")` ten times each, together."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(5), context.Queue()
    import coordination_app

    processes = [
        context.Process(target=coordination_app.enqueue_once, args=(10, start, out), daemon=True)
        for _ in range(5)
    ]
    for process in processes:
        process.start()
    reports = [out.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(10)
    assert [error for _, error in reports if error] == []
    assert sum(len(ids) for ids, _ in reports) == 50
    return {task_id for ids, _ in reports for task_id in ids}


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
def test_locks_limits_and_unique_tasks_across_consumers(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Env(tmp_path, monkeypatch, _url(backend, tmp_path))
    env.app_path = "coordination_app:app"
    import coordination_app as tasks

    try:
        unique_ids = _unique_from_processes(env)
        workers = [env.start("--lease", str(LEASE_S), "-w", "4") for _ in range(3)]
        pairs = [tasks.pair(PAIR_S) for _ in range(PAIR_TASKS)]
        paced = env.app.enqueue_many([tasks.paced.s() for _ in range(PACED_TASKS)])
        done = [*pairs, *paced, tasks.app.result(next(iter(unique_ids)))]
        env.wait_for(lambda: all(env.state(r.id) is State.DONE for r in done), 30, "all done")

        holder = tasks.hold_lock(60)
        env.wait_for(lambda: env.runs("locked"), 15, "the lock taken")
        [(_, _, holder_pid, _, _)] = env.runs("locked")
        tasks.take_lock()
        env.wait_for(lambda: env.runs("trying"), 15, "another task trying for the lock")
        time.sleep(0.5)
        assert len(env.runs("locked")) == 1, "the lock had two holders"
        [victim] = [w for w in workers if w.pid == holder_pid]
        victim.send(signal.SIGKILL)
        killed_at = time.time()
        env.wait_for(lambda: len(env.runs("locked")) > 1, LEASE_S + 15, "the lock taken again")
        _, _, taker_pid, _, taken_at = env.runs("locked")[1]
        assert env.state(holder.id) is not State.DONE
    finally:
        env.close()
        if backend == "postgres":
            drop_postgres_schema(env.url)

    assert len(unique_ids) == 1, unique_ids
    assert len([r for r in env.runs("started") if r[0] in unique_ids]) == 1
    pair_runs = _intervals(env, {r.id for r in pairs})
    assert len(pair_runs) == PAIR_TASKS, "each ran once: nothing claimed and handed back"
    assert _most_at_once(pair_runs) == 2
    paced_starts = [at for i, e, _, _, at in env.runs("started") if i in {r.id for r in paced}]
    assert len(paced_starts) == PACED_TASKS
    paced_claims = [at for i, e, _, _, at in env.runs("claimed") if i in {r.id for r in paced}]
    assert _most_in_a_second(paced_claims) <= RATE
    assert _most_in_a_second(paced_starts) <= RATE + RATE_SLACK
    assert max(paced_starts) - min(paced_starts) >= 1.9, "45 tasks at 20/s take over 2 s"
    assert taker_pid != holder_pid
    assert taken_at - killed_at <= LEASE_S + TAKEOVER_SLACK_S
