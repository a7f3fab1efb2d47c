"""`python -m bench consumers`: one backlog drained by 1, 2 and 4 consumer processes, on Redis,
PostgreSQL and a Redis Cluster, and where the CPU went meanwhile.

    python -m bench consumers                                10,000 tasks, 1/2/4 processes, 3 runs
    python -m bench consumers --tasks 4000 --runs 1 --backends cluster

For each run, backend and number of processes: a fresh place (bench.places; the cluster's is a
key prefix on three primaries this command starts on loopback ports 7131-7133, its counter on
the bench Redis), `--tasks` no-op tasks enqueued in bulk, then that many
`scoter worker bench.apps.scoter_app:app -w 4 -q` processes drain them (one queue). Reported:
the drain rate (as `python -m bench` counts it: from the first completion to the last) and,
from the first completion to the last, the CPU used as a percentage of one core by the
consumers' process trees, by the server (redis-server; the cluster's three redis-servers and
the bench Redis holding its counter; every postgres process), and by the whole machine (all
cores: 100 % per core). Runs are interleaved. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import places, settings
from bench.counter import Counter
from bench.metrics import summarize
from bench.procs import REPO, Consumer, cpu_seconds
from bench.runner import BenchError
from scoter import local_cluster

HERE = Path(__file__).resolve().parent
BACKENDS = ("redis", "postgres", "cluster")
CLUSTER_PORTS = (7131, 7132, 7133)
CHUNK = 1000
POLL_S = 0.02
TIMEOUT_S = 600.0
BIN = Path(sys.executable).parent
console = Console() if sys.stdout.isatty() else Console(width=160)


@dataclass(frozen=True)
class Place:
    url: str
    """The scoter storage URL (with its prefix)."""
    counter: Counter
    servers: tuple[str, ...]
    """What runs the servers, for their CPU: program names, and for redis-server its ports."""


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench consumers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tasks", type=int, default=10_000, help="backlog size (10,000)")
    p.add_argument("--consumers", default="1,2,4", help="consumer processes (1,2,4)")
    p.add_argument("--backends", default=",".join(BACKENDS), help=",".join(BACKENDS))
    p.add_argument("--runs", type=int, default=3, help="runs of each (median, min, max)")
    p.add_argument("--results", type=Path, default=HERE / "results", help="results folder")
    return p.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse(argv)
    backends = [b for b in args.backends.split(",") if b]
    counts = [int(n) for n in args.consumers.split(",") if n]
    args.results.mkdir(parents=True, exist_ok=True)
    started = datetime.now()
    samples: dict[str, list[dict[str, float]]] = {}
    skipped: dict[str, str] = {}
    with _cluster(args.results, "cluster" in backends) as cluster_url:
        for backend in backends:
            problem = _problem(backend)
            if problem:
                skipped[backend] = problem
        for i in range(args.runs):
            for backend in (b for b in backends if b not in skipped):
                for n in counts:
                    key = f"{backend}-{n}"
                    figures = run_once(backend, n, args.tasks, args.results, cluster_url)
                    samples.setdefault(key, []).append(figures)
                    shown = ", ".join(f"{k} {v:,.0f}" for k, v in figures.items())
                    console.print(f"run {i + 1} [bold]{key}[/]: {shown}", highlight=False)
    rows = {k: {m: summarize([s[m] for s in v]) for m in v[0]} for k, v in samples.items()}
    doc = {"started": started.isoformat(timespec="seconds"), "tasks": args.tasks,
           "runs": args.runs, "rows": rows, "skipped": skipped}  # fmt: skip
    name = f"consumers-{started:%Y%m%d-%H%M%S}.json"
    (args.results / name).write_text(json.dumps(doc, indent=1))
    (args.results / "consumers-latest.json").write_text(json.dumps(doc, indent=1))
    console.print(_table(doc))
    for backend, problem in skipped.items():
        console.print(f"[yellow]skipped[/] {backend}: {problem}", highlight=False)
    console.print(f"results: {args.results / name}")


def run_once(
    backend: str, consumers: int, tasks: int, root: Path, cluster: str
) -> dict[str, float]:
    """Enqueue `tasks` in a fresh place, drain them with `consumers` processes."""
    with _place(backend, root, cluster) as place:
        env = {settings.ENV_SCOTER_URL: place.url, settings.ENV_COUNTER: place.counter.url,
               settings.ENV_PREFIX: place.counter.prefix}  # fmt: skip
        _enqueue(env, tasks)
        argv = [_program("scoter"), "worker", "bench.apps.scoter_app:app", "-w", "4", "-q"]
        log = root / "consumers.log"
        procs = [Consumer(argv, env, log) for _ in range(consumers)]
        try:
            return _drain(place, procs, tasks)
        finally:
            for proc in procs:
                proc.stop()


def _drain(place: Place, consumers: list[Consumer], tasks: int) -> dict[str, float]:
    deadline = time.perf_counter() + TIMEOUT_S
    _wait(place, consumers, 1, deadline)
    servers = _server_pids(place.servers)
    before = _cpu(consumers, servers)
    _wait(place, consumers, tasks, deadline)
    after = _cpu(consumers, servers)
    done = place.counter.read()
    assert done.first is not None and done.last is not None
    took = max(after[0] - before[0], 1e-9)
    return {
        "drain": (done.count - 1) / max(done.last - done.first, 1e-9),
        "consumers_cpu_pct": 100 * (after[1] - before[1]) / took,
        "server_cpu_pct": 100 * (after[2] - before[2]) / took,
        "machine_cpu_pct": 100 * (after[3] - before[3]) / took,
    }


def _wait(place: Place, consumers: list[Consumer], count: int, deadline: float) -> None:
    while place.counter.read().count < count:
        if not any(c.alive for c in consumers):
            raise BenchError("every consumer exited before the drain finished")
        if time.perf_counter() > deadline:
            raise BenchError(f"drain timed out at {place.counter.read().count} of {count}")
        time.sleep(POLL_S)


def _cpu(consumers: list[Consumer], servers: list[int]) -> tuple[float, float, float, float]:
    """Now, and the CPU seconds so far of the consumers, the servers and the machine."""
    pids = [pid for c in consumers for pid in c.pids()]
    return time.perf_counter(), cpu_seconds(pids), cpu_seconds(servers), _machine_busy_s()


def _machine_busy_s() -> float:
    """CPU seconds every core of the machine spent busy (not idle or waiting), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / 100  # USER_HZ: 100 on Linux


def _server_pids(servers: tuple[str, ...]) -> list[int]:
    """The processes whose command line starts with one of `servers` (a program name, or
    `redis-server *:PORT` for one server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        program = command.split(" ", 1)[0].rsplit("/", 1)[-1].rstrip(":")  # postgres: ...
        for server in servers:
            name, _, port = server.partition(" ")
            if program == name and port in command:
                found.append(int(entry.name))
                break
    return found


@contextmanager
def _place(backend: str, root: Path, cluster: str) -> Iterator[Place]:
    where = "redis" if backend == "cluster" else backend
    with places.fresh(where, root) as place:
        port = place.url.rsplit(":", 1)[-1].split("/")[0]
        if backend == "postgres":
            yield Place(place.url, place.counter, ("postgres",))
        elif backend == "redis":
            url = f"{place.url}?prefix={place.prefix}"
            yield Place(url, place.counter, (f"redis-server :{port}",))
        else:
            servers = (f"redis-server :{port}", *(f"redis-server :{p}" for p in CLUSTER_PORTS))
            try:
                yield Place(f"{cluster}?prefix={place.prefix}", place.counter, servers)
            finally:
                _drop_cluster_keys(place.prefix)


def _enqueue(env: dict[str, str], tasks: int) -> None:
    argv = [sys.executable, "-m", "bench.producer", "scoter_app", "bulk", str(tasks), str(CHUNK)]
    full = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, env=full, cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise BenchError(f"producer failed: {done.stderr.strip()[-600:]}")


def _program(name: str) -> str:
    program = BIN / name
    return str(program) if program.exists() else name


def _problem(backend: str) -> str | None:
    if backend == "cluster":
        return local_cluster.missing() or places.server_problem("redis")
    return places.server_problem(backend)


@contextmanager
def _cluster(root: Path, wanted: bool) -> Iterator[str]:
    if not wanted or local_cluster.missing():
        yield ""
        return
    with (
        tempfile.TemporaryDirectory(dir=root, prefix="cluster-") as directory,
        local_cluster.LocalCluster(CLUSTER_PORTS, Path(directory)) as cluster,
    ):
        yield cluster.url


def _drop_cluster_keys(prefix: str) -> None:
    import redis

    for port in CLUSTER_PORTS:
        client = redis.Redis(port=port)
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.unlink(key)
        client.close()


def _table(doc: dict[str, Any]) -> Table:
    table = Table(title=f"drain of {doc['tasks']:,} tasks: median (min-max) of {doc['runs']} runs")
    for column in ("backend", "processes", "tasks/s", "consumers CPU %", "server CPU %",
                   "machine CPU %"):  # fmt: skip
        table.add_column(column, justify="right")
    for key, row in doc["rows"].items():
        backend, n = key.rsplit("-", 1)
        cells = [_cell(row[m]) for m in
                 ("drain", "consumers_cpu_pct", "server_cpu_pct", "machine_cpu_pct")]  # fmt: skip
        table.add_row(backend, n, *cells)
    return table


def _cell(figure: dict[str, float]) -> str:
    return f"{figure['median']:,.0f} ({figure['min']:,.0f}-{figure['max']:,.0f})"
