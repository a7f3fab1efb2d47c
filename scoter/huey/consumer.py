"""Huey's `Consumer` on scoter's: `huey.create_consumer(**options)`, `scoter huey-consumer`.

The options are huey_consumer's; each maps onto scoter's consumer (docs/from-huey.md). SIGTERM
and SIGINT drain the scoter way: running tasks finish until the drain deadline (`-t`, 25 s by
default), what still runs is handed back to the queue, and the consumer exits 0.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import TYPE_CHECKING, Any

from scoter.consumer.supervisor import Consumer as ScoterConsumer
from scoter.huey.constants import WORKER_PROCESS

if TYPE_CHECKING:
    from scoter.huey.api import Huey

log = logging.getLogger("huey.consumer")

DEFAULT_DRAIN_S = 25.0
SCOTER_VARIABLES = {"lease": "SCOTER_LEASE", "heartbeat": "SCOTER_HEARTBEAT"}
"""scoter's consumer options that huey_consumer has no flag for, from the environment as
`scoter worker` reads them."""


class Consumer:
    """Runs a Huey app's tasks on scoter's consumer."""

    def __init__(
        self,
        huey: Huey,
        workers: int = 1,
        periodic: bool = True,
        initial_delay: float = 0.1,
        backoff: float = 1.15,
        max_delay: float = 10.0,
        scheduler_interval: float = 1,
        worker_type: str = "thread",
        check_worker_health: bool = True,
        health_check_interval: float = 10,
        flush_locks: bool = False,
        extra_locks: str | None = None,
        max_tasks: int | None = None,
        shutdown_timeout: float | None = None,
        graceful_signal: str = "INT",
        app_path: str | None = None,
        **scoter_options: Any,
    ) -> None:
        """Huey's options (the polling and health-check ones are accepted and unused:
        scoter waits on wake-ups and replaces dead process workers itself). `app_path`:
        `module:attribute` of the Huey app, which process workers import."""
        self.huey = huey
        self.workers = workers
        self.worker_type = worker_type
        self.periodic = periodic
        self.scheduler_interval = scheduler_interval
        self.flush_locks = flush_locks
        self.extra_locks = [n.strip() for n in (extra_locks or "").split(",") if n.strip()]
        if not periodic:
            huey.app.periodic.clear()  # this process enqueues no periodic slot
        for option, variable in SCOTER_VARIABLES.items():
            if option not in scoter_options and os.environ.get(variable):
                scoter_options[option] = float(os.environ[variable])
        self.scoter = ScoterConsumer(
            huey.app, workers=workers,
            executor="process" if worker_type == WORKER_PROCESS else "thread",
            schedule_interval=scheduler_interval,
            drain_timeout=DEFAULT_DRAIN_S if shutdown_timeout is None else shutdown_timeout,
            app_path=app_path, **scoter_options,
        )  # fmt: skip

    def run(self) -> int:
        """Consume until SIGTERM or SIGINT; returns scoter's exit code (75: SIGHUP restart)."""
        self._banner()
        if self.flush_locks or self.extra_locks:
            self._flush_locks()
        return self.scoter.run()

    def start(self) -> None:
        """Huey runs its workers in the background here; scoter's consumer runs in `run()`."""

    def stop(self, graceful: bool = False) -> None:
        self.scoter.stop(graceful=graceful)

    def _flush_locks(self) -> None:
        try:
            flushed = self.huey.flush_locks(*self.extra_locks)
        except Exception as exc:  # no locks in this scoter version
            log.warning("could not flush locks: %s", exc)
            return
        if flushed:
            log.info("Flushed locks: %s", ", ".join(sorted(flushed)))

    def _banner(self) -> None:
        kind = "process" if self.worker_type == WORKER_PROCESS else "thread"
        log.info("Huey consumer started with %s %s, PID %s at %s", self.workers, kind,
                 os.getpid(), dt.datetime.now().isoformat(" ", "seconds"))  # fmt: skip
        log.info("Scheduler runs every %s second(s).", self.scheduler_interval)
        log.info("Periodic tasks are %s.", "enabled" if self.periodic else "disabled")
        log.info("scoter engine on %s: SIGTERM and SIGINT drain for up to %g s, then hand "
                 "unfinished tasks back to the queue (nothing is lost).", self.huey.app,
                 self.scoter.drain_timeout)  # fmt: skip
        commands = sorted(self.huey.wrappers)
        if commands:
            log.info("The following commands are available:\n+ %s", "\n+ ".join(commands))
