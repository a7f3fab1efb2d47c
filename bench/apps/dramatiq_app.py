"""Dramatiq's RedisBroker on $BENCH_REDIS: `dramatiq bench.apps.dramatiq_app`.

Dramatiq has no bulk enqueue (a group sends its messages one by one).
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench import counter
from bench.settings import ENV_REDIS, REDIS_URL

broker = RedisBroker(url=os.environ.get(ENV_REDIS, REDIS_URL))
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=0)
def noop() -> None:
    counter.incr()


def enqueue_one() -> None:
    noop.send()
