"""The producer side, run as its own process so that no peer is imported into the harness:

    python -m bench.producer APP prepare          run APP.prepare() if it has one
    python -m bench.producer APP single N         warm up with one task, then time N enqueues
                                                  (and, on Redis, bare round trips: see below)
    python -m bench.producer APP bulk N CHUNK     time N enqueues in bulk calls of CHUNK
    python -m bench.producer APP latency N        N sequential tasks, each enqueued once the
                                                  previous one completed: enqueue-to-done times

APP is a module of bench.apps. Prints one JSON object on stdout.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import sys
import time
from types import ModuleType
from typing import Any

from bench.counter import Completions, Counter, RedisPusher
from bench.settings import ENV_COUNTER, ENV_PREFIX, ENV_REDIS

LATENCY_POLL_S = 0.0005
LATENCY_PAUSE_MAX_S = 0.02
"""A random pause before each latency task, so that tasks do not arrive in step with a
consumer's polling cycle."""
LATENCY_TIMEOUT_S = 30.0
ROUND_TRIPS = 5000
"""Bare round trips timed after a one-by-one enqueue on Redis."""


def single(app: ModuleType, n: int) -> dict[str, Any]:
    app.enqueue_one()  # connections, scripts and imports: not part of the rate
    start = time.perf_counter()
    for _ in range(n):
        app.enqueue_one()
    out: dict[str, Any] = {"seconds": time.perf_counter() - start, "enqueued": n + 1}
    if n and ENV_REDIS in os.environ:
        out["round_trip_s"] = round_trip_s(os.environ[ENV_REDIS], min(n, ROUND_TRIPS))
    return out


def round_trip_s(url: str, n: int) -> float:
    """Seconds per bare `RPUSH` of a short value to the Redis at `url`, written on a raw
    socket, each waiting for its reply: the least that any enqueue which returns once the
    server has its task can take here, timed in the same process as the enqueues."""
    pusher = RedisPusher(url, f"{os.environ.get(ENV_PREFIX, 'bench')}:round-trips")
    value = b"0123456789abcdef"
    try:
        pusher.push(value)  # connected: not part of the time
        start = time.perf_counter()
        for _ in range(n):
            pusher.push(value)
        return (time.perf_counter() - start) / n
    finally:
        pusher.drop()
        pusher.close()


def bulk(app: ModuleType, n: int, chunk: int) -> dict[str, Any]:
    app.enqueue_bulk(1)  # warm-up, as for single
    start = time.perf_counter()
    for offset in range(0, n, chunk):
        app.enqueue_bulk(min(chunk, n - offset))
    return {"seconds": time.perf_counter() - start, "enqueued": n + 1}


def latency(app: ModuleType, n: int) -> dict[str, Any]:
    """Enqueue-to-done seconds of `n` sequential tasks; a task not done within
    LATENCY_TIMEOUT_S counts as a timeout (and the next one is enqueued)."""
    counter = Counter(os.environ[ENV_COUNTER], os.environ.get(ENV_PREFIX, "bench"))
    pause = random.Random(1)
    seen = counter.read().count
    latencies: list[float] = []
    timeouts = 0
    for _ in range(n):
        time.sleep(pause.uniform(0, LATENCY_PAUSE_MAX_S))
        start = time.perf_counter()
        app.enqueue_one()
        done = _wait_past(counter, seen)
        seen = done.count
        if done.last is not None and done.last >= start:
            latencies.append(done.last - start)
        else:
            timeouts += 1
    return {"latencies": latencies, "timeouts": timeouts}


def _wait_past(counter: Counter, seen: int) -> Completions:
    """The counter once it passed `seen`, or as it is after LATENCY_TIMEOUT_S."""
    deadline = time.perf_counter() + LATENCY_TIMEOUT_S
    while (done := counter.read()).count <= seen and time.perf_counter() < deadline:
        time.sleep(LATENCY_POLL_S)
    return done


def main(argv: list[str]) -> None:
    app = importlib.import_module(f"bench.apps.{argv[0]}")
    mode, numbers = argv[1], [int(a) for a in argv[2:]]
    if mode == "prepare":
        getattr(app, "prepare", lambda: None)()
        out: dict[str, Any] = {}
    elif mode == "single":
        out = single(app, *numbers)
    elif mode == "bulk":
        out = bulk(app, *numbers)
    elif mode == "latency":
        out = latency(app, *numbers)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)  # some peers leave non-daemon threads or open pools behind


if __name__ == "__main__":
    main(sys.argv[1:])
