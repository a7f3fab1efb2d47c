"""Huey's asyncio helpers (`huey.contrib.asyncio`): await a Result without blocking the loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from scoter.huey.constants import EmptyData
from scoter.huey.exceptions import ResultTimeout, TaskException
from scoter.huey.results import Result, ResultGroup
from scoter.huey.utils import Error


async def aget_result(
    res: Result,
    backoff: float = 1.15,
    max_delay: float = 1.0,
    preserve: bool = False,
    timeout: float | None = None,
) -> Any:
    """The task's value, polled on a thread so the event loop keeps running; raises
    TaskException when the task failed."""
    delay = 0.01
    deadline = None if timeout is None else time.monotonic() + timeout
    while (value := await asyncio.to_thread(res._get, preserve)) is EmptyData:
        if deadline is not None and time.monotonic() >= deadline:
            raise ResultTimeout("timed out waiting for result")
        await asyncio.sleep(delay)
        delay = min(delay * backoff, max_delay)
    if isinstance(value, Error):
        raise TaskException(value.metadata)
    return value


async def aget_result_group(rg: ResultGroup, *args: Any, **kwargs: Any) -> list[Any]:
    """The values of a ResultGroup, awaited together."""
    return list(await asyncio.gather(*(aget_result(r, *args, **kwargs) for r in rg)))
