"""arq on $BENCH_REDIS: `arq bench.apps.arq_app.WorkerSettings`. arq has no bulk enqueue.

The task records its completion with `bench.counter.aincr`, as scoter's asyncio no-op does:
one `RPUSH` on an asyncio connection of the counter's own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, ClassVar

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from bench import counter
from bench.settings import ENV_REDIS, REDIS_URL

SETTINGS = RedisSettings.from_dsn(os.environ.get(ENV_REDIS, REDIS_URL))


async def noop(ctx: dict[str, Any]) -> None:
    await counter.aincr()


async def _quiet(ctx: dict[str, Any]) -> None:
    """arq logs two lines per job at INFO; the others run with per-task logging off too."""
    logging.getLogger("arq.worker").setLevel(logging.WARNING)


class WorkerSettings:
    functions: ClassVar = [noop]
    redis_settings = SETTINGS
    on_startup = _quiet


_loop = asyncio.new_event_loop()
_pool: ArqRedis | None = None


def enqueue_one() -> None:
    global _pool
    if _pool is None:
        _pool = _loop.run_until_complete(create_pool(SETTINGS))
    _loop.run_until_complete(_pool.enqueue_job("noop"))
