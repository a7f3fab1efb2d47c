"""scoter on each of its backends, with its default consumer: four worker threads."""

from __future__ import annotations

from bench.systems.base import Scoter

CONSUMER = ("scoter", "worker", "bench.apps.scoter_app:app", "-w", "4", "-k", "thread", "-q")

SCOTER = [
    Scoter("scoter", backend, "scoter_app", "scoter", CONSUMER, "4 threads (default)", bulk=True)
    for backend in ("sqlite", "redis", "postgres")
]
