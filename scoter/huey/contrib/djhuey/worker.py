"""What a process worker of `run_huey -k process` imports: Django set up, every installed
app's tasks.py imported, and the HUEY app (`scoter.huey.contrib.djhuey.worker:HUEY`)."""

import django
from django.utils.module_loading import autodiscover_modules

django.setup()
autodiscover_modules("tasks")

from scoter.huey.contrib.djhuey import HUEY  # noqa: E402

__all__ = ["HUEY"]
