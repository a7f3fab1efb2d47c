"""Huey: SqliteHuey on a file (BENCH_HUEY=sqlite:///path) or RedisHuey (BENCH_HUEY=redis://…).

Huey has no bulk enqueue (`task.map` enqueues one by one), so there is no `enqueue_bulk`.
"""

from __future__ import annotations

import os

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from bench import counter
from bench.settings import ENV_HUEY


def _huey(where: str) -> Huey:
    if where.startswith("sqlite:///"):
        return SqliteHuey("bench", filename=where[len("sqlite:///") :])
    return RedisHuey("bench", url=where)


huey = _huey(os.environ.get(ENV_HUEY, "sqlite:///bench-huey.db"))


@huey.task()
def noop() -> None:
    counter.incr()


def enqueue_one() -> None:
    noop()
