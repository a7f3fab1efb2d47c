"""`manage.py run_huey`: huey_consumer's flags, the consumer options of the HUEY setting, each
installed app's tasks.py imported (unless -A), on scoter's consumer."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils.module_loading import autodiscover_modules

from scoter.exit import finish
from scoter.huey.consumer_options import ConsumerConfig, OptionParserHandler

TYPES = {"int": int, "float": float}
APP_PATH = "scoter.huey.contrib.djhuey.worker:HUEY"


class Command(BaseCommand):  # type: ignore[misc]
    help = "Run the Huey consumer (on scoter)"

    def add_arguments(self, parser: CommandParser) -> None:
        handler = OptionParserHandler()
        for options in (handler.get_logging_options(), handler.get_worker_options(),
                        handler.get_scheduler_options()):  # fmt: skip
            for short, full, kwargs in options:
                if short == "-v":  # Django's own -v is its verbosity
                    short, full = "-V", "--huey-verbose"
                kwargs = dict(kwargs)
                if "type" in kwargs:
                    kwargs["type"] = TYPES[kwargs["type"]]
                kwargs.setdefault("default", None)
                parser.add_argument(*(n for n in (full, short) if n), **kwargs)
        parser.add_argument("-A", "--disable-autoload", action="store_true",
                            dest="disable_autoload", help='Do not autoload "tasks.py"')  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        from scoter.huey.contrib.djhuey import HUEY

        consumer_options: dict[str, Any] = {}
        if isinstance(getattr(settings, "HUEY", None), dict):
            consumer_options.update(settings.HUEY.get("consumer", {}))
        known: set[str] = set(ConsumerConfig._fields)
        consumer_options.update((k, v) for k, v in options.items() if v is not None and k in known)
        if not options.get("disable_autoload"):
            autodiscover_modules("tasks")
        config = ConsumerConfig(**consumer_options)
        config.validate()
        if not logging.getLogger("huey").handlers:
            config.setup_logger()
        consumer = HUEY.create_consumer(app_path=APP_PATH, **config.values)
        finish(consumer.run(), consumer.scoter.abandoned_threads)
