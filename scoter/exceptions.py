"""Exceptions raised by scoter. All derive from ScoterError."""

from __future__ import annotations

from scoter.display import one_line


class ScoterError(Exception):
    """Base class of every scoter exception."""


class ConfigurationError(ScoterError):
    """A URL, option or environment variable is wrong; the message says how to fix it."""


class SchemaVersionError(ConfigurationError):
    """The storage's schema is at another version than this scoter's: `scoter migrate`, or an
    upgrade of scoter, mends it (a consumer waits for that, as during a deploy)."""


class DecodeError(ScoterError):
    """A message or result could not be decoded (bad bytes, bad signature, unknown tag)."""


class TooLarge(ScoterError, ValueError):
    """A message or a result is larger than its app allows (`max_message_bytes`,
    `max_result_bytes`); the message says how large, the limit, and what to do."""


class UnknownTask(ScoterError):
    """A message names a task this process has not registered."""


class TaskFailed(ScoterError):
    """Raised by Result.get() when the task ended `dead`; carries the reason and error text."""

    def __init__(self, task_id: str, reason: str, error: str | None) -> None:
        self.task_id = task_id
        self.reason = reason
        self.error = error
        self.exception: BaseException | None = None
        """Given to a flow's error handler: the exception the step raised, when the consumer
        caught it in its own process and the serializer carries it (pickle; JSON does not)."""
        detail = f"\n{error}" if error else ""
        super().__init__(f"task {task_id} is dead ({reason}){detail}")

    def __reduce__(
        self,
    ) -> tuple[type[TaskFailed], tuple[str, str, str | None], dict[str, BaseException | None]]:
        """Pickled with its fields (a flow's error handler gets one as its argument)."""
        return TaskFailed, (self.task_id, self.reason, self.error), {"exception": self.exception}


class ResultTimeout(ScoterError):
    """Result.get(timeout=...) gave up before the task finished."""


class ResultMissing(ScoterError):
    """Result.get(blocking=True) or Result.aget() found no record of the task, and raised at
    once: a task's record exists from the moment `enqueue` returns until its result expires
    (`result_ttl`) or it is purged, so no wait could bring it back."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"task {task_id} has no record: its result expired (result_ttl) or it was purged, "
            "or no task was enqueued with this id (or the transaction of its enqueue_in has "
            "not committed)"
        )


class EnqueueError(ScoterError):
    """An enqueue gave up: the storage stayed unreachable for `enqueue_timeout` seconds.

    `stored_unknown` says whether the tasks may have been stored anyway (a try that reached
    the server before the link failed may still land). Either way it is safe to enqueue the
    same messages again with the same `ids`: a live id is left as it is.
    """

    def __init__(self, ids: list[str], stored_unknown: bool, cause: BaseException) -> None:
        self.ids = ids
        self.stored_unknown = stored_unknown
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        if stored_unknown:
            outcome = ("they may have been stored all the same: enqueue them again with the "
                       "same ids (a live id is a no-op) or look them up")  # fmt: skip
        else:
            outcome = "none was stored"
        super().__init__(
            f"could not enqueue {len(ids)} task(s) ({shown}): the storage did not answer "
            f"({one_line(cause)}); {outcome}"
        )


class LeaseLost(ScoterError):
    """This attempt no longer holds its task's lease: another consumer may own it now."""


class Interrupt(ScoterError):
    """Raise from a task to hand it back to the queue unfinished, at no cost to `retries`.

    Typical use: `if ctx.stop_requested: raise Interrupt()` after a checkpoint. The release
    counts against `max_interruptions` so that a loop stays bounded. `delay`: seconds before
    the task may be claimed again (0: at once).
    """

    def __init__(self, *args: object, delay: float = 0.0) -> None:
        super().__init__(*args)
        self.delay = delay


class Cancel(ScoterError):
    """Raise from a task, or from a `pre_execute` hook, to end the task now: dead with reason
    `canceled` and this message, no retry spent or taken. `scoter dead retry` runs it again."""


class TimedOut(ScoterError):
    """The attempt ran past its task's `timeout`; it counts as an error against `retries`."""


class RemoteError(ScoterError):
    """Stands for an exception raised in a child process; its text is the original's repr."""


class TaskLockedException(ScoterError):
    """A lock (`app.lock_task`) is held by another: raised on entering its block. Raised by a
    task, it fails the attempt as any error does: give the task `retries` to try again."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"lock {name!r} is held by another (see `scoter info APP`)")


class RateLimitExceeded(ScoterError):
    """`app.rate_limit(name, limit, per)` was entered `limit` times in the last `per` seconds.
    Raised by a task, it fails the attempt as any error does: give the task `retries` and a
    `retry_delay`, or a task `rate_limit=`, which waits queued instead."""

    def __init__(self, name: str, limit: int, per: float) -> None:
        self.name = name
        self.limit = limit
        self.per = per
        super().__init__(f"rate limit {name!r} reached: {limit} in {per:g} s")
