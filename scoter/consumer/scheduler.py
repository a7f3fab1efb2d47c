"""The scheduler: promotes scheduled tasks (eta, delay, retry backoff) to queued when due."""

from __future__ import annotations

import time

from scoter.consumer.service import Service
from scoter.storage.base import Storage


class Scheduler(Service):
    name = "scheduler"

    def __init__(self, storage: Storage, interval: float) -> None:
        super().__init__(interval)
        self.storage = storage

    def tick(self) -> None:
        self.storage.promote(time.time())
