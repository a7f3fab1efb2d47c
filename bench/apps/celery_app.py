"""Celery with the Redis broker on $BENCH_REDIS, no result backend:
`celery -A bench.apps.celery_app worker`. Celery has no bulk publish."""

from __future__ import annotations

import os

from celery import Celery

from bench import counter
from bench.settings import ENV_REDIS, REDIS_URL

app = Celery("bench", broker=os.environ.get(ENV_REDIS, REDIS_URL))
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)


@app.task(name="bench.noop")
def noop() -> None:
    counter.incr()


def enqueue_one() -> None:
    noop.delay()
