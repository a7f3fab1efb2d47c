"""Huey's signals (`huey.signals`): the names, and the dispatcher of `huey.signal()`.

Receivers are called as `receiver(signal, task, *extra)`, `task` a Huey `Task` with the id,
name, args and kwargs of the run; SIGNAL_ERROR passes the exception. scoter sends its own
signals under the same names where the meaning is the same; the Huey layer adds CANCELED,
LOCKED, SCHEDULED, TIMEOUT and RATE_LIMITED where Huey sends them.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("huey")

SIGNAL_CANCELED = "canceled"
SIGNAL_COMPLETE = "complete"
SIGNAL_ERROR = "error"
SIGNAL_EXECUTING = "executing"
SIGNAL_EXPIRED = "expired"
SIGNAL_LOCKED = "locked"
SIGNAL_RETRYING = "retrying"
SIGNAL_REVOKED = "revoked"
SIGNAL_SCHEDULED = "scheduled"
SIGNAL_INTERRUPTED = "interrupted"
SIGNAL_ENQUEUED = "enqueued"
SIGNAL_TIMEOUT = "timeout"
SIGNAL_RATE_LIMITED = "rate-limited"

Receiver = Callable[..., Any]


class Signal:
    """Receivers per signal name; 'any' holds those connected to every signal."""

    __slots__ = ("receivers",)

    def __init__(self) -> None:
        self.receivers: dict[str, list[Receiver]] = {"any": []}

    def connect(self, receiver: Receiver, *signals: str) -> None:
        for signal in signals or ("any",):
            self.receivers.setdefault(signal, []).append(receiver)

    def disconnect(self, receiver: Receiver, *signals: str) -> None:
        for signal in signals or tuple(self.receivers):
            if receiver in self.receivers.get(signal, []):
                self.receivers[signal].remove(receiver)

    def __bool__(self) -> bool:
        return any(self.receivers.values())

    def send(self, signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
        receivers = itertools.chain(self.receivers.get(signal, ()), self.receivers["any"])
        for receiver in list(receivers):
            try:
                receiver(signal, task, *args, **kwargs)
            except Exception:
                logger.exception(
                    'Error occurred in receiver "%s" for signal "%s"',
                    getattr(receiver, "__name__", repr(receiver)),
                    signal,
                )
