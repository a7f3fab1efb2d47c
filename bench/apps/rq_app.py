"""RQ on $BENCH_REDIS: `rq worker`, bulk through `Queue.enqueue_many` (one pipeline)."""

from __future__ import annotations

import os

from redis import Redis
from rq import Queue

from bench import counter
from bench.settings import ENV_REDIS, REDIS_URL

queue = Queue("default", connection=Redis.from_url(os.environ.get(ENV_REDIS, REDIS_URL)))


def noop() -> None:
    counter.incr()


def enqueue_one() -> None:
    queue.enqueue(noop)


def enqueue_bulk(n: int) -> None:
    queue.enqueue_many([Queue.prepare_data(noop) for _ in range(n)])
