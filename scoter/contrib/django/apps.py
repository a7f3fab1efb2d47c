"""The Django app: imports `tasks.py` of every installed app once Django is ready."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class ScoterConfig(AppConfig):  # type: ignore[misc]
    name = "scoter.contrib.django"
    label = "scoter"
    verbose_name = "scoter"

    def ready(self) -> None:
        from scoter.contrib.django import config

        if config().get("autodiscover", True):
            autodiscover_modules("tasks")
