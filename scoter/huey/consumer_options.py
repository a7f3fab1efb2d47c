"""`huey_consumer`'s options, all of them, short and long (`huey.consumer_options`).

Shared by `scoter huey-consumer`, the `huey_consumer` script under the alias, and Django's
`run_huey`. What each means on scoter is in docs/from-huey.md ("The consumer's flags").
"""

from __future__ import annotations

import logging
import optparse
from typing import Any, NamedTuple

from scoter.huey.constants import WORKER_THREAD, WORKER_TYPES

Option = tuple[str, str, dict[str, Any]]


def option(name: str | tuple[str, str], **options: Any) -> Option:
    if isinstance(name, tuple):
        letter, long_name = name
    else:
        long_name, letter = name.replace("_", "-"), name[0]
        options.setdefault("dest", name)
    return "-" + letter, "--" + long_name, options


class OptionParserHandler:
    """The option groups of `huey_consumer`, as (short, long, optparse keywords)."""

    def get_worker_options(self) -> tuple[Option, ...]:
        return (
            option("workers", type="int", help="number of worker threads/processes (default=1)"),
            option(("k", "worker-type"), choices=WORKER_TYPES, dest="worker_type",
                   help="thread, greenlet (runs as thread) or process"),
            option("delay", dest="initial_delay", metavar="SECONDS", type="float",
                   help="accepted; scoter waits on wake-ups instead of polling"),
            option("max_delay", metavar="SECONDS", type="float",
                   help="accepted; scoter waits on wake-ups instead of polling"),
            option("backoff", metavar="FACTOR", type="float",
                   help="accepted; scoter waits on wake-ups instead of polling"),
            option(("c", "health-check-interval"), type="float", dest="health_check_interval",
                   metavar="SECONDS", help="accepted; scoter replaces dead process workers"),
            option(("C", "disable-health-check"), action="store_false",
                   dest="check_worker_health", help="accepted (no effect)"),
            option("flush_locks", action="store_true", dest="flush_locks",
                   help="flush all locks when starting consumer"),
            option(("L", "extra-locks"), dest="extra_locks",
                   help="additional locks to flush, separated by comma"),
            option(("M", "max-tasks"), dest="max_tasks", metavar="COUNT", type="int",
                   help="accepted (no effect): workers are not restarted"),
            option(("t", "shutdown-timeout"), dest="shutdown_timeout", metavar="SECONDS",
                   type="float", help="seconds SIGTERM/SIGINT let tasks finish before handing "
                   "them back (default=25)"),
            option(("g", "graceful-signal"), dest="graceful_signal", choices=("INT", "TERM"),
                   help="accepted: SIGINT and SIGTERM both drain"),
        )  # fmt: skip

    def get_scheduler_options(self) -> tuple[Option, ...]:
        return (
            option("scheduler_interval", type="int", help="seconds between scheduler runs"),
            option("no_periodic", action="store_false", dest="periodic",
                   help="do NOT enqueue periodic tasks"),
            option(("u", "utc"), action="store_true", dest="utc",
                   help="accepted (no effect; the app's utc setting counts)"),
            ("", "--localtime", {"action": "store_false", "dest": "utc",
                                 "help": "accepted (no effect; the app's utc setting counts)"}),
        )  # fmt: skip

    def get_logging_options(self) -> tuple[Option, ...]:
        return (
            option("logfile", metavar="FILE"),
            option("verbose", action="store_true", help="verbose logging (DEBUG)"),
            option("quiet", action="store_false", dest="verbose", help="minimal logging"),
            option(("S", "simple"), action="store_true", dest="simple_log",
                   help="simple logging format (time message)"),
        )  # fmt: skip

    def get_option_parser(self) -> optparse.OptionParser:
        parser = optparse.OptionParser("Usage: %prog [options] path.to.huey_instance")
        groups = (
            ("Logging", self.get_logging_options()),
            ("Workers", self.get_worker_options()),
            ("Scheduler", self.get_scheduler_options()),
        )
        for title, options in groups:
            group = parser.add_option_group(title)
            for short, long_name, kwargs in options:
                group.add_option(*(name for name in (short, long_name) if name), **kwargs)
        return parser


class ConsumerConfig(NamedTuple):
    """The parsed options, with Huey's defaults."""

    workers: int = 1
    worker_type: str = WORKER_THREAD
    initial_delay: float = 0.1
    backoff: float = 1.15
    max_delay: float = 10.0
    check_worker_health: bool = True
    health_check_interval: float = 10
    scheduler_interval: int = 1
    periodic: bool = True
    logfile: str | None = None
    verbose: bool | None = None
    simple_log: bool | None = None
    flush_locks: bool = False
    extra_locks: str | None = None
    max_tasks: int | None = None
    shutdown_timeout: float | None = None
    graceful_signal: str = "INT"
    utc: bool | None = None

    def validate(self) -> None:
        if self.backoff < 1:
            raise ValueError("The backoff must be at least 1.")
        if not 0 < self.scheduler_interval <= 60 or 60 % self.scheduler_interval:
            raise ValueError("The scheduler interval must be a factor of 60: 1, 2, 3, 4, 5, "
                             "6, 10, 12, 15, 20, 30, or 60")  # fmt: skip
        if self.graceful_signal not in ("INT", "TERM"):
            raise ValueError("The graceful signal must be INT or TERM.")
        if self.workers < 1:
            raise ValueError("The number of workers must be at least 1.")

    @property
    def loglevel(self) -> int:
        if self.verbose is None:
            return logging.INFO
        return logging.DEBUG if self.verbose else logging.WARNING

    def setup_logger(self, logger: logging.Logger | None = None) -> None:
        """Log as huey_consumer does, for the "huey" and "scoter" loggers (or `logger`)."""
        worker = "%(process)d" if self.worker_type == "process" else "%(threadName)s"
        if self.simple_log:
            formatter = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
        else:
            formatter = logging.Formatter(f"[%(asctime)s] %(levelname)s:%(name)s:{worker}:"
                                          "%(message)s")  # fmt: skip
        handler: logging.Handler = (
            logging.FileHandler(self.logfile) if self.logfile else logging.StreamHandler()
        )
        handler.setFormatter(formatter)
        loggers = [logger] if logger else [logging.getLogger("huey"), logging.getLogger("scoter")]
        for each in loggers:
            each.addHandler(handler)
            each.setLevel(self.loglevel)

    @property
    def values(self) -> dict[str, Any]:
        skip = ("logfile", "verbose", "simple_log", "utc")
        return {key: getattr(self, key) for key in self._fields if key not in skip}
