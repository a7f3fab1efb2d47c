"""A background service: a thread that calls `tick()` every `interval` seconds until stopped."""

from __future__ import annotations

import logging
import threading
import time

from scoter.display import one_line
from scoter.storage import outages

log = logging.getLogger("scoter.consumer")


class Service:
    """Subclasses implement `tick`. Errors are logged and retried at the next tick."""

    name = "service"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"scoter-{self.name}", daemon=True)
        self._failing = False
        self.ticked_at = time.monotonic()
        """When its last tick ended, failed or not (time.monotonic()): liveness."""
        self.ok_at = self.ticked_at
        """When its last tick succeeded."""

    @property
    def alive(self) -> bool:
        """Whether its thread runs."""
        return self._thread.is_alive()

    @property
    def started(self) -> bool:
        """Whether its thread was started (it may have ended since)."""
        return self._thread.ident is not None

    def start(self) -> None:
        self.ticked_at = self.ok_at = time.monotonic()
        self._thread.start()

    def stop(self, join: bool = True) -> None:
        self._stopped.set()
        if join and self._thread.is_alive():
            self._thread.join(timeout=5)

    def tick(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:
                outages.ERRORS.add()
                self._report(exc)
            else:
                self.ok_at = time.monotonic()
                if self._failing:
                    log.warning("%s recovered", self.name)
                    self._failing = False
            self.ticked_at = time.monotonic()

    def _report(self, exc: Exception) -> None:
        """One log line per change of state, not one per failed tick."""
        if not self._failing:
            log.warning("%s failed, retrying every %.1fs: %s", self.name, self.interval,
                        one_line(exc))  # fmt: skip
            self._failing = True
