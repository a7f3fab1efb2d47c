"""Huey's exceptions (`huey.exceptions`), raised and caught as Huey apps expect.

`ConfigurationError` and `ResultTimeout` are scoter's too: an `except` for either catches both.
"""

from __future__ import annotations

from typing import Any

from scoter import exceptions as scoter_exceptions


class HueyException(Exception):
    """Base class of Huey's own exceptions."""


class ConfigurationError(HueyException, scoter_exceptions.ConfigurationError):
    """A Huey option or setting cannot be mapped; the message says what to do."""


class TaskLockedException(HueyException):
    """`lock_task` found the lock held."""


class ResultTimeout(HueyException, scoter_exceptions.ResultTimeout):
    """`Result.get(blocking=True, timeout=...)` gave up."""


class TaskTimeout(HueyException):
    """`task.check_timeout()` found the task past its `timeout`."""


class RateLimitExceeded(HueyException):
    """`rate_limit` found its limit reached; `delay` says when it frees."""

    def __init__(self, key: str, delay: float, retry: bool = True) -> None:
        self.key, self.delay, self.retry = key, delay, retry
        super().__init__(key, delay, retry)

    def __str__(self) -> str:
        if self.retry:
            return f'Rate limit exceeded on "{self.key}", retry in {self.delay:0.1f}s'
        return f'Rate limit exceeded on "{self.key}"'


class CancelExecution(Exception):
    """Raise from a task or a pre_execute hook to cancel it. `retry`: True runs it again,
    False never, None again only while it has retries left."""

    def __init__(self, msg: str | None = None, retry: bool | None = None) -> None:
        self.retry = retry
        super().__init__(*(() if msg is None else (msg,)))


class RetryTask(Exception):
    """Raise from a task to run it again (after `delay` seconds or at `eta`), whatever its
    retries say."""

    def __init__(self, msg: str | None = None, eta: Any = None, delay: Any = None) -> None:
        self.eta, self.delay = eta, delay
        super().__init__(msg)


class TaskException(Exception):
    """Raised by `Result.get()` for a task that failed; `metadata` holds `error`,
    `traceback`, `task_id`, `retries` and scoter's dead `reason`."""

    def __init__(self, metadata: dict[str, Any] | None = None, *args: object) -> None:
        self.metadata = metadata or {}
        super().__init__(*args)

    def __str__(self) -> str:
        return str(self.metadata.get("error") or "unknown error")


RETRYING_EXCEPTIONS = (RetryTask, RateLimitExceeded, TaskLockedException)
