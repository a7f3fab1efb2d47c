"""Huey for `python -m bench lateness`: a task that records when it started against the time it
was due. With $BENCH_LATENESS_PERIODIC set, also a periodic task every minute (Huey's finest)."""

from __future__ import annotations

import os
import time

from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey

from bench.lateness_record import ENV_PERIODIC, record
from bench.settings import ENV_HUEY


def _huey(where: str) -> Huey:
    if where.startswith("sqlite:///"):
        return SqliteHuey("bench", filename=where[len("sqlite:///") :])
    return RedisHuey("bench", url=where)


huey = _huey(os.environ.get(ENV_HUEY, "sqlite:///bench-huey.db"))


@huey.task()
def late(due: float) -> None:
    record("delayed", due, time.time())


if os.environ.get(ENV_PERIODIC):

    @huey.periodic_task(crontab())
    def tick() -> None:
        started = time.time()
        record("periodic", started - started % 60, started)  # its slot: the minute's start
