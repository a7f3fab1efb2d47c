"""scoter on any backend: `scoter worker bench.apps.scoter_app:app` with $BENCH_SCOTER_URL."""

from __future__ import annotations

import os

from bench import counter
from bench.settings import ENV_SCOTER_URL
from scoter import Scoter

app = Scoter("bench", os.environ.get(ENV_SCOTER_URL, "sqlite:///bench-scoter.db"))


@app.task
def noop() -> None:
    counter.incr()


def enqueue_one() -> None:
    noop()


def enqueue_bulk(n: int) -> None:
    """One storage call for `n` tasks."""
    app.enqueue_many(noop.s() for _ in range(n))
