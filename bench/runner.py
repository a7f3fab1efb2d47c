"""One run of one system: enqueue, drain with one and two consumer processes, idle CPU and
enqueue-to-done latency. Every figure comes from side effects (`bench.counter`).

Drain rate = (N - 1) / (last completion - first completion): the clock starts at the first
task done, so that interpreter start-up and imports, which differ per peer and do not depend
on N, are left out. The wall time from the consumers' start is reported beside it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.places import Place, fresh
from bench.procs import REPO, Consumer, PeakMemory, command_line, idle_cpu_percent
from bench.producer import LATENCY_TIMEOUT_S
from bench.systems import System

DRAIN_POLL_S = 0.02
PRODUCER_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Sizes:
    drain: int = 20_000
    """Tasks pre-enqueued for each drain."""
    latency: int = 500
    """Sequential tasks for the latency percentiles."""
    idle_s: float = 5.0
    """Seconds over which an idle consumer's CPU use is measured."""
    chunk: int = 1000
    """Tasks per bulk enqueue call."""
    timeout_s: float = 600.0
    """Longest a drain may take before the run is marked failed."""

    def for_system(self, system: System) -> Sizes:
        drain = min(self.drain, system.max_drain or self.drain)
        latency = min(self.latency, system.max_latency or self.latency)
        return Sizes(drain, latency, self.idle_s, self.chunk, self.timeout_s)


QUICK = Sizes(drain=300, latency=20, idle_s=1.0, chunk=100, timeout_s=120.0)


class BenchError(Exception):
    """A measurement could not complete (a consumer died, a drain timed out)."""


@dataclass
class Run:
    """The figures of one run of one system, by metric name, and what went wrong."""

    metrics: dict[str, float] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


Step = Callable[[System, Place, Run, Sizes, Path], None]


def run_system(system: System, sizes: Sizes, root: Path, logs: Path) -> Run:
    """All measurements of one run, each in a fresh place. A step that fails is recorded in
    `errors` and the next one still runs."""
    run = Run()
    sizes = sizes.for_system(system)
    steps: list[tuple[str, Step]] = [
        ("enqueue and drain, 1 process", _single_then_drain),
        ("enqueue and drain, 2 processes", _bulk_then_drain),
        ("idle CPU and latency", _idle_and_latency),
    ]
    for name, step in steps:
        try:
            with fresh(system.backend, root, flush=system.flush) as place:
                _prepare(system, place)
                step(system, place, run, sizes, logs)
        except Exception as exc:
            run.errors.append(f"{name}: {exc!r}"[:800])
    return run


def _single_then_drain(system: System, place: Place, run: Run, sizes: Sizes, logs: Path) -> None:
    out = _produce(system, place, "single", sizes.drain)
    run.metrics["enqueue_single"] = sizes.drain / out["seconds"]
    if "round_trip_s" in out:
        run.metrics["round_trips"] = 1 / out["round_trip_s"]
    _drain(system, place, run, 1, out["enqueued"], sizes, logs)


def _bulk_then_drain(system: System, place: Place, run: Run, sizes: Sizes, logs: Path) -> None:
    if system.bulk:
        out = _produce(system, place, "bulk", sizes.drain, sizes.chunk)
        run.metrics["enqueue_bulk"] = sizes.drain / out["seconds"]
    else:
        out = _produce(system, place, "single", sizes.drain)
    _drain(system, place, run, 2, out["enqueued"], sizes, logs)


def _prepare(system: System, place: Place) -> None:
    _produce(system, place, "prepare")


def _produce(system: System, place: Place, mode: str, *numbers: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.producer", system.app, mode, *map(str, numbers)]
    env = {**_base_env(), **system.env(place)}
    done = subprocess.run(
        argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=PRODUCER_TIMEOUT_S
    )
    if done.returncode != 0:
        raise BenchError(f"producer {mode} failed: {done.stderr.strip()[-600:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _base_env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}


def _start(system: System, place: Place, count: int, logs: Path, label: str) -> list[Consumer]:
    env = system.env(place)
    log = logs / f"{system.key}-{label}.log"
    return [Consumer(system.argv(), env, log) for _ in range(count)]


def consumer_command(system: System, place: Place) -> str:
    return command_line(system.argv(), {"PYTHONPATH": ".", **system.env(place)})


def _drain(
    system: System,
    place: Place,
    run: Run,
    processes: int,
    expected: int,
    sizes: Sizes,
    logs: Path,
) -> None:
    label = f"drain_{processes}"
    run.commands[label] = f"{processes} x " + consumer_command(system, place)
    start = time.perf_counter()
    consumers = _start(system, place, processes, logs, label)
    try:
        with PeakMemory(consumers) as memory:
            _wait_for(place, consumers, expected, start + sizes.timeout_s)
        wall = time.perf_counter() - start
    finally:
        for consumer in consumers:
            consumer.stop()
    done = place.counter.read()
    assert done.first is not None and done.last is not None
    run.metrics[label] = (done.count - 1) / max(done.last - done.first, 1e-9)
    run.metrics[f"{label}_wall"] = done.count / wall
    if processes == 1:
        run.metrics["peak_rss_mb"] = memory.peak / 2**20


def _wait_for(place: Place, consumers: list[Consumer], expected: int, deadline: float) -> None:
    while place.counter.read().count < expected:
        if not any(c.alive for c in consumers):
            raise BenchError("every consumer exited before the drain finished")
        if time.perf_counter() > deadline:
            count = place.counter.read().count
            raise BenchError(f"drain timed out: {count} of {expected} tasks done")
        time.sleep(DRAIN_POLL_S)


def _idle_and_latency(system: System, place: Place, run: Run, sizes: Sizes, logs: Path) -> None:
    run.commands["latency"] = consumer_command(system, place)
    [consumer] = _start(system, place, 1, logs, "latency")
    try:
        _produce(system, place, "single", 0)  # one warm-up task
        _wait_for(place, [consumer], 1, time.perf_counter() + 60)
        run.metrics["idle_cpu_pct"] = idle_cpu_percent(consumer, sizes.idle_s)
        out = _produce(system, place, "latency", sizes.latency)
    finally:
        consumer.stop()
    if out["timeouts"]:
        run.errors.append(
            f"latency: {out['timeouts']} of {sizes.latency} tasks not done "
            f"within {LATENCY_TIMEOUT_S:g} s (left out of the percentiles)"
        )
    latencies = out["latencies"]
    ms = sorted(1000 * x for x in latencies)
    run.metrics["latency_p50_ms"] = statistics.median(ms)
    run.metrics["latency_p99_ms"] = _percentile(ms, 99)


def _percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, round(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
