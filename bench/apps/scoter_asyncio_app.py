"""scoter's asyncio executor: `scoter worker bench.apps.scoter_asyncio_app:app -k asyncio`
with $BENCH_SCOTER_URL. The no-op is an `async def` task (`bench.counter.aincr`)."""

from __future__ import annotations

import os

from bench import counter
from bench.settings import ENV_SCOTER_URL
from scoter import Scoter

app = Scoter("bench", os.environ.get(ENV_SCOTER_URL, "sqlite:///bench-scoter.db"))


@app.task
async def noop() -> None:
    await counter.aincr()


def enqueue_one() -> None:
    noop()


def enqueue_bulk(n: int) -> None:
    """One storage call for `n` tasks."""
    app.enqueue_many(noop.s() for _ in range(n))
