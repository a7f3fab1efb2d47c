"""What a process worker of `scoter_worker -k process` imports: Django set up (which imports
every installed app's tasks.py) and the app (`scoter.contrib.django.worker:app`)."""

import django

django.setup()

from scoter.contrib.django import get_app  # noqa: E402

app = get_app()
