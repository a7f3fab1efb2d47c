"""Riding out storage outages: retry a call while the storage says it is unreachable or busy."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from scoter.display import one_line
from scoter.storage.base import Storage

log = logging.getLogger("scoter.storage")

T = TypeVar("T")

FIRST_PAUSE_S = 0.05
LONGEST_PAUSE_S = 2.0


class Tally:
    """A count that threads add to."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


ERRORS = Tally()
"""Failed storage calls of this process that scoter retries or goes on from: outages seen by
settling writes and enqueues, failed claims, failed ticks of a consumer's services."""


def through_outages(
    storage: Storage, call: Callable[[int], T], give_up: Callable[[], bool], what: str
) -> T:
    """Run `call` until it returns, retrying the storage's transient errors with backoff;
    raise the error once `give_up()` is true. `call` gets the retry number (0 first).

    Only outages are retried (`Storage.transient_errors`): any other error is raised at once,
    and one that means the storage refuses its configuration (a wrong password, a missing
    database: `Storage.misconfigured`) as that ConfigurationError.
    """
    pause = FIRST_PAUSE_S
    for retry in itertools.count():
        try:
            return call(retry)
        except Exception as exc:
            if isinstance(exc, storage.transient_errors):
                ERRORS.add()
            refused = storage.misconfigured(exc)
            if refused is not None:
                raise refused from exc
            if not isinstance(exc, storage.transient_errors) or give_up():
                raise
            if retry == 0:
                log.warning("%s: storage unavailable at %s, retrying: %s", what,
                            storage.url, one_line(exc))  # fmt: skip
        time.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE_S)
    raise AssertionError("unreachable")


def within(seconds: float) -> Callable[[], bool]:
    """A `give_up` that is true once `seconds` have passed from now."""
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline
