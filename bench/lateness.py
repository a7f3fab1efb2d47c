"""`python -m bench lateness`: how late scheduled tasks start on an idle consumer.

    python -m bench lateness                      scoter (SQLite, Redis, PostgreSQL) and Huey
                                                  (SQLite, Redis): delayed and periodic tasks
    python -m bench lateness --huey-minutes 0     without Huey's periodic rows (a sample a minute)
    python -m bench lateness --scoter-path DIR    scoter's consumers import scoter from DIR
                                                  (an older one: git archive REV scoter | tar -x)

For each system and backend, in a fresh place, one idle consumer process — scoter `scoter
worker -w 4`; Huey `huey_consumer -w 4 -k thread`, its scheduler every second (the default):

- delayed: `--samples` tasks, one at a time, each scheduled a random 0.3 to 1.5 s ahead
  (`task.schedule(delay=...)` on both) once the one before it started;
- periodic: scoter's `every(seconds=1)` task for `--samples` slots; Huey's `crontab()`, every
  minute (its finest), for `--huey-minutes` slots.

A task's lateness is when it started minus when it was due (its eta, its slot's time); each
task records both in a SQLite file of the run's own. Reported: p50, p99 and max per row, in
milliseconds, printed and saved as JSON under `--results`. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import lateness_record, places, settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ROWS = [("scoter", "sqlite"), ("scoter", "redis"), ("scoter", "postgres"),
        ("huey", "sqlite"), ("huey", "redis")]  # fmt: skip
DELAY_S = (0.3, 1.5)
START_WAIT_S = 20.0
"""How long a sample may take to start before it counts as missing."""
console = Console() if sys.stdout.isatty() else Console(width=160)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench lateness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--samples", type=int, default=30, help="delayed tasks and scoter slots")
    p.add_argument("--huey-minutes", type=int, default=2, help="Huey periodic slots (0: none)")
    p.add_argument("--only", default="scoter,huey", help="systems: scoter, huey")
    p.add_argument("--backends", default="sqlite,redis,postgres", help="a subset of these")
    p.add_argument("--scoter-path", type=Path, help="import scoter from here in its consumers")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--results", type=Path, default=HERE / "results", help="results folder")
    return p.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse(argv)
    systems, backends = args.only.split(","), args.backends.split(",")
    rows: list[dict[str, Any]] = []
    for system, backend in ROWS:
        if system not in systems or backend not in backends:
            continue
        problem = places.server_problem(backend)
        if problem:
            console.print(f"[yellow]skipped {system} on {backend}: {problem}")
            continue
        rows += measure(system, backend, args)
        show(rows)
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"lateness-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                               "rows": rows}, indent=1))  # fmt: skip
    console.print(f"results: {out}")


def measure(system: str, backend: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = random.Random(args.seed)
    found = []
    with _place(system, backend) as env:
        with _consumer(system, env, args.scoter_path, periodic=False):
            found.append(_row(system, backend, "delayed", _delayed(system, env, args.samples, rng)))
        slots = args.samples if system == "scoter" else args.huey_minutes
        if slots:
            with _consumer(system, env, args.scoter_path, periodic=True):
                found.append(_row(system, backend, "periodic", _periodic(env, slots, system)))
    return found


@contextmanager
def _place(system: str, backend: str) -> Iterator[dict[str, str]]:
    """The environment a consumer and this process need: the queue's place, the record file."""
    with (
        tempfile.TemporaryDirectory(prefix="lateness-") as folder,
        places.fresh(backend, Path(folder), flush=system == "huey") as place,
    ):
        record = os.path.join(folder, "starts.db")
        lateness_record.create(record)
        env = {lateness_record.ENV_FILE: record}
        if system == "scoter":
            prefix = f"?prefix={place.prefix}" if backend == "redis" else ""
            env[settings.ENV_SCOTER_URL] = place.url + prefix
        else:
            env[settings.ENV_HUEY] = place.url.replace("queue.db", "huey.db")
        old = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@contextmanager
def _consumer(
    system: str, env: dict[str, str], scoter_path: Path | None, *, periodic: bool
) -> Iterator[None]:
    paths, cwd = [str(REPO)], REPO
    if scoter_path is not None and system == "scoter":  # first on sys.path: `-m` puts cwd there
        cwd = scoter_path.resolve()
        paths.insert(0, str(cwd))
    full = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(paths)}
    if periodic:
        full[lateness_record.ENV_PERIODIC] = "1"
    if system == "scoter":
        argv = [sys.executable, "-m", "scoter", "worker", "bench.apps.lateness_scoter:app", "-w",
                "4", "-q"]  # fmt: skip
    else:
        argv = [sys.executable, "-m", "huey.bin.huey_consumer", "bench.apps.lateness_huey.huey",
                "-w", "4", "-k", "thread", "-q"]  # fmt: skip
    proc = subprocess.Popen(argv, env=full, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(2.0)  # imported and idle
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _enqueuer(system: str) -> Callable[[float, float], None]:
    """enqueue(due, delay): schedule one task `delay` seconds ahead, due at `due`."""
    if system == "scoter":
        from bench.apps import lateness_scoter as s

        s = importlib.reload(s)  # its app on this place
        return lambda due, delay: s.late.schedule((due,), delay=delay) and None
    from bench.apps import lateness_huey as h

    h = importlib.reload(h)
    return lambda due, delay: h.late.schedule(args=(due,), delay=delay) and None


def _delayed(system: str, env: dict[str, str], samples: int, rng: random.Random) -> list[float]:
    enqueue = _enqueuer(system)
    record = env[lateness_record.ENV_FILE]
    late: list[float] = []
    for i in range(samples + 1):  # the first warms the consumer up
        delay = rng.uniform(*DELAY_S)
        due = time.time() + delay
        enqueue(due, delay)
        started = _wait_for(record, "delayed", i + 1, due + START_WAIT_S)
        if started is None and i == 0:
            console.print(f"[red]{system}: the warm-up task never started; no samples")
            return []
        if started is not None and i > 0:
            late.append(started - due)
    return late


def _wait_for(record: str, kind: str, count: int, until: float) -> float | None:
    """The start time of the `count`th start of `kind` (None if none came by `until`)."""
    while time.time() < until:
        rows = lateness_record.starts(record, kind)
        if len(rows) >= count:
            return rows[count - 1][1]
        time.sleep(0.005)
    return None


def _periodic(env: dict[str, str], slots: int, system: str) -> list[float]:
    record = env[lateness_record.ENV_FILE]
    period = 1.0 if system == "scoter" else 60.0
    _wait_for(record, "periodic", slots + 1, time.time() + (slots + 2) * period + START_WAIT_S)
    rows = lateness_record.starts(record, "periodic")[1 : slots + 1]  # the first: start-up
    return [started - due for due, started in rows]


def _row(system: str, backend: str, kind: str, late: list[float]) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in late)
    return {
        "system": system, "backend": backend, "kind": kind, "samples": len(ms),
        "p50_ms": statistics.median(ms) if ms else None,
        "p99_ms": ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))] if ms else None,
        "max_ms": ms[-1] if ms else None,
    }  # fmt: skip


def show(rows: list[dict[str, Any]]) -> None:
    table = Table(title="lateness of scheduled tasks on an idle consumer (ms)")
    for column in ("system", "backend", "kind", "samples", "p50", "p99", "max"):
        table.add_column(column, justify="right" if column not in ("system", "kind") else "left")
    for r in rows:
        figures = ["-" if r[k] is None else f"{r[k]:,.0f}" for k in ("p50_ms", "p99_ms", "max_ms")]
        table.add_row(r["system"], r["backend"], r["kind"], str(r["samples"]), *figures)
    console.print(table)
