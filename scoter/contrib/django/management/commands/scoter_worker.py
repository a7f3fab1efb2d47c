"""`manage.py scoter_worker`: `scoter worker` for the project's app. Options default to
settings.SCOTER["worker"] (keys: the long option names, e.g. `drain_timeout`)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scoter.consumer.supervisor import EXECUTORS
from scoter.display import LineFormatter
from scoter.exit import finish

APP_PATH = "scoter.contrib.django.worker:app"
OPTIONS = ("workers", "queues", "lease", "heartbeat", "drain_timeout", "executor", "prefetch")


class Command(BaseCommand):  # type: ignore[misc]
    help = "Run a scoter consumer for this project's tasks until SIGTERM or SIGINT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-w", "--workers", type=int, help="worker threads [4]")
        parser.add_argument(
            "-Q",
            "--queue",
            dest="queues",
            action="append",
            help="queue to consume; repeat for more [every task's]",
        )
        parser.add_argument("--lease", type=float, help="seconds a claim holds [30]")
        parser.add_argument("--heartbeat", type=float, help="seconds between renewals")
        parser.add_argument(
            "--drain-timeout", type=float, help="seconds SIGTERM waits for running tasks [25]"
        )
        parser.add_argument("-k", "--executor", choices=EXECUTORS, help="[thread]")
        parser.add_argument("--prefetch", type=int, help="tasks claimed ahead")
        parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors")

    def handle(self, *args: Any, **options: Any) -> None:
        from scoter.contrib.django import config, get_app

        worker = {**config().get("worker", {})}
        worker.update((k, options[k]) for k in OPTIONS if options.get(k) is not None)
        level = logging.WARNING if options["quiet"] else logging.INFO
        handler = logging.StreamHandler()
        handler.setFormatter(LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        scoter_log = logging.getLogger("scoter")
        scoter_log.addHandler(handler)
        scoter_log.setLevel(level)
        consumer = get_app().consumer(app_path=APP_PATH, **worker)
        finish(consumer.run(), consumer.abandoned_threads)
