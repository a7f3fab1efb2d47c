"""Measure scoter's PostgreSQL backend, and procrastinate's when it is installed, on one server.

    python scripts/bench_postgres.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--runs 3] [--tasks 20000] [--workers 4] [--systems scoter,procrastinate]

Per run, the systems taking turns, each in a fresh database: the rate of single enqueues (one
call per task) and of batched enqueues (1000 per call), the drain rate of --tasks no-op tasks
by one worker process, and the latency from enqueue to done seen by the producer while that
worker idles. Prints the median of the runs. procrastinate is not a dependency of scoter:
`pip install procrastinate` first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

SINGLE = 2000
BATCH = 1000
LATENCY_SAMPLES = 200

SCOTER_APP = """\
import os
from scoter import Scoter

app = Scoter("bench", os.environ["SCOTER_URL"])


@app.task
def noop():
    return None
"""

PROCRASTINATE_APP = """\
import os
import procrastinate

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=os.environ["BENCH_URL"]))


@app.task(queue="default")
async def noop():
    return None
"""


class System:
    """One queue under test: how to enqueue, run a worker and read how many tasks are done."""

    name = ""
    done_query = ""
    state_query = ""

    def __init__(self, url: str, workdir: Path, workers: int) -> None:
        self.url = url
        self.workdir = workdir
        self.workers = workers
        self.env = {**os.environ, "PYTHONPATH": str(workdir), "SCOTER_URL": url, "BENCH_URL": url}

    def open(self) -> None: ...
    def close(self) -> None: ...
    def enqueue_one(self) -> str: ...
    def enqueue_batch(self, n: int) -> None: ...
    def worker(self) -> subprocess.Popen[bytes]: ...


class Scoter(System):
    name = "scoter"

    def open(self) -> None:
        (self.workdir / "benchapp.py").write_text(SCOTER_APP)
        sys.path.insert(0, str(self.workdir))
        os.environ["SCOTER_URL"] = self.url
        import benchapp

        self.app = benchapp.app
        self.app._storage, self.app._url = None, self.url
        self.noop = benchapp.noop
        self.app.storage.counts()  # creates the schema
        schema = self.app.storage.schema
        self.done_query = f"SELECT count(*) FROM {schema}.tasks WHERE state = 'done'"
        self.state_query = f"SELECT state = 'done' FROM {schema}.tasks WHERE id = %s"

    def close(self) -> None:
        self.app.storage.close()

    def enqueue_one(self) -> str:
        return str(self.noop().id)

    def enqueue_batch(self, n: int) -> None:
        self.noop.map([()] * n)

    def worker(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "scoter", "worker", "benchapp:app", "-q"]
        command += ["-w", str(self.workers)]
        return subprocess.Popen(command, env=self.env, cwd=self.workdir)


class Procrastinate(System):
    name = "procrastinate"
    done_query = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
    state_query = "SELECT status = 'succeeded' FROM procrastinate_jobs WHERE id = %s"

    def open(self) -> None:
        (self.workdir / "procapp.py").write_text(PROCRASTINATE_APP)
        sys.path.insert(0, str(self.workdir))
        os.environ["BENCH_URL"] = self.url
        import procapp

        self.app = procapp.app
        self.noop = procapp.noop
        command = [sys.executable, "-m", "procrastinate", "--app=procapp.app", "schema", "--apply"]
        subprocess.run(command, env=self.env, cwd=self.workdir, check=True, capture_output=True)
        self._opened = self.app.open()
        self._opened.__enter__()

    def close(self) -> None:
        self._opened.__exit__(None, None, None)

    def enqueue_one(self) -> str:
        return str(self.noop.defer())

    def enqueue_batch(self, n: int) -> None:
        self.noop.batch_defer(*[{}] * n)

    def worker(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "procrastinate", "--app=procapp.app", "worker"]
        command += ["-c", str(self.workers)]
        return subprocess.Popen(command, env=self.env, cwd=self.workdir, stderr=subprocess.DEVNULL)


def rate(n: int, action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return n / (time.perf_counter() - start)


def drain(system: System, db: psycopg.Connection[Any], total: int) -> float:
    """Tasks per second, from the first done task seen to the last (startup left out)."""
    worker = system.worker()
    try:
        first = (0, 0.0)
        while (done := db.execute(system.done_query).fetchone()[0]) < total:  # type: ignore[index]
            if done and not first[0]:
                first = (done, time.perf_counter())
            time.sleep(0.02)
        return (total - first[0]) / (time.perf_counter() - first[1])
    finally:
        worker.terminate()
        worker.wait(30)


def latency(system: System, db: psycopg.Connection[Any]) -> float:
    """Median seconds from an enqueue call to its task seen done, the worker idle between."""
    worker = system.worker()
    try:
        system.enqueue_one()
        time.sleep(2)  # the worker is up and idle
        samples = []
        for _ in range(LATENCY_SAMPLES):
            start = time.perf_counter()
            task_id = system.enqueue_one()
            while not (db.execute(system.state_query, (task_id,)).fetchone() or [False])[0]:
                time.sleep(0.0002)
            samples.append(time.perf_counter() - start)
            time.sleep(0.02)
        return statistics.median(samples)
    finally:
        worker.terminate()
        worker.wait(30)


def enqueue_rates(system: System, tasks: int) -> dict[str, float]:
    def singles() -> None:
        for _ in range(SINGLE):
            system.enqueue_one()

    def batches() -> None:
        for _ in range(tasks // BATCH):
            system.enqueue_batch(BATCH)

    return {"enqueue one/s": rate(SINGLE, singles), "enqueue batched/s": rate(tasks, batches)}


def one_run(cls: type[System], server: str, args: argparse.Namespace) -> dict[str, float]:
    database = f"bench_{cls.name}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {database}")
    url = urllib.parse.urlsplit(server)._replace(path=f"/{database}").geturl()
    with tempfile.TemporaryDirectory() as workdir:
        system = cls(url, Path(workdir), args.workers)
        system.open()
        with psycopg.connect(url, autocommit=True) as db:
            result = enqueue_rates(system, args.tasks)
            result["drain/s"] = drain(system, db, SINGLE + args.tasks // BATCH * BATCH)
            result["latency p50 ms"] = latency(system, db) * 1000
        system.close()
        for name in ("benchapp", "procapp"):
            sys.modules.pop(name, None)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--systems", default="scoter,procrastinate")
    args = parser.parse_args()
    systems = {"scoter": Scoter, "procrastinate": Procrastinate}
    names = args.systems.split(",")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(args.runs):  # the systems take turns, so that both see the same load
        for name in names:
            results[name].append(one_run(systems[name], args.url, args))
    for name, runs in results.items():
        medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(f"{name} (-w/-c {args.workers}, median of {args.runs}):")
        for key, value in medians.items():
            every = ", ".join(f"{r[key]:.1f}" for r in runs)
            print(f"  {key:>18}: {value:9.1f}   ({every})")


if __name__ == "__main__":
    main()
