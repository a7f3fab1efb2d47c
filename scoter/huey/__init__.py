"""Huey's API on scoter: change `from huey import RedisHuey` to `from scoter.huey import
RedisHuey` (or turn on the `huey` import alias, `scoter.huey.alias`) and the app runs on
scoter's engine: `scoter huey-consumer myapp.huey`. See docs/from-huey.md.
"""

from scoter.huey.api import (
    BlackHoleHuey,
    CySqliteHuey,
    FileHuey,
    Huey,
    MemoryHuey,
    PostgresHuey,
    PriorityRedisExpireHuey,
    PriorityRedisHuey,
    RedisExpireHuey,
    RedisHuey,
    SqliteHuey,
    chord,
    crontab,
    group,
)
from scoter.huey.exceptions import CancelExecution, RetryTask
from scoter.huey.utils import SKIPPED, Error

__version__ = "2.5.0"
"""The Huey API version this layer follows (what `huey.__version__` says under the alias)."""

__all__ = [
    # the app classes
    "SKIPPED",
    "BlackHoleHuey",
    # exceptions a task raises
    "CancelExecution",
    "CySqliteHuey",
    "Error",
    "FileHuey",
    "Huey",
    "MemoryHuey",
    "PostgresHuey",
    "PriorityRedisExpireHuey",
    "PriorityRedisHuey",
    "RedisExpireHuey",
    "RedisHuey",
    "RetryTask",
    "SqliteHuey",
    "__version__",
    # schedules and flows
    "chord",
    "crontab",
    "group",
]
