"""scoter on each of its backends, with its default consumer: four worker threads. And its
other executors on SQLite and Redis, each against the peer's consumer of the same kind:
`-k process` against Huey's process workers (4 each), `-k asyncio` (an `async def` no-op, 10
at once) against arq (10 jobs at once, its default). And, when named (`--only
scoter,scoter-metrics`), the default consumer with its Prometheus metrics on, against the same
consumer with them off, in the same run."""

from __future__ import annotations

from bench.systems.base import Scoter


def consumer(app: str, workers: int, executor: str) -> tuple[str, ...]:
    return ("scoter", "worker", f"bench.apps.{app}:app", "-w", str(workers), "-k", executor, "-q")


CONSUMER = consumer("scoter_app", 4, "thread")
PROCESS = consumer("scoter_app", 4, "process")
ASYNCIO = consumer("scoter_asyncio_app", 10, "asyncio")
METRICS = (*CONSUMER, "--metrics-port", "0")
EXECUTOR_BACKENDS = ("sqlite", "redis")


def _process(backend: str) -> Scoter:
    return Scoter(
        "scoter",
        backend,
        "scoter_app",
        "scoter",
        PROCESS,
        "4 processes (-w 4 -k process)",
        bulk=True,
        executor="process",
        groups=("process",),
    )


def _asyncio(backend: str) -> Scoter:
    return Scoter(
        "scoter",
        backend,
        "scoter_asyncio_app",
        "scoter",
        ASYNCIO,
        "an event loop, 10 tasks at once (-w 10 -k asyncio)",
        bulk=True,
        executor="asyncio",
        groups=("asyncio",),
    )


def _metrics(backend: str) -> Scoter:
    return Scoter(
        "scoter",
        backend,
        "scoter_app",
        "scoter",
        METRICS,
        "4 threads, metrics on (--metrics-port 0)",
        bulk=True,
        variant="metrics",
        groups=("metrics",),
    )


SCOTER = [
    *(
        Scoter(
            "scoter", backend, "scoter_app", "scoter", CONSUMER, "4 threads (default)", bulk=True
        )
        for backend in ("sqlite", "redis", "postgres")
    ),
    *map(_process, EXECUTOR_BACKENDS),
    *map(_asyncio, EXECUTOR_BACKENDS),
    *map(_metrics, EXECUTOR_BACKENDS),
]
