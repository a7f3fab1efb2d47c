"""Maintenance steps in bounded batches: each batch one atomic step over a few hundred tasks,
with a pause after it, so that no step holds a SQLite write lock or a Redis server for long (a
mixin of Storage; docs/performance.md, "Maintenance at scale")."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

MAINTENANCE_BATCH = 500
"""The most tasks one batch of a maintenance step moves or deletes: a few milliseconds of a
SQLite write lock or of a Redis script (docs/performance.md, "Maintenance at scale")."""
BATCH_PAUSE = 1.0
"""Between two batches of a maintenance step, its thread waits this many times as long as the
batch took: the step holds the lock or the server at most half the time, so that enqueues and
claims waiting for it (SQLite's busy handler retries with growing sleeps) get in."""


class Batches:
    """How a storage's maintenance steps walk any number of tasks."""

    maintenance_batch: int = MAINTENANCE_BATCH
    """The most tasks one batch of a maintenance step moves or deletes (see `in_batches`)."""

    def in_batches(self, batch: Callable[[int], int], size: int | None = None) -> int:
        """Run `batch(size)` — one atomic step over at most `size` tasks (default
        `maintenance_batch`) that returns how many it took — until one takes fewer than
        `size`; returns the total taken. After each full batch the thread pauses
        (`between_batches`), so that other calls of every process get their turn."""
        size = size or self.maintenance_batch
        total = 0
        while True:
            started = time.monotonic()
            taken = batch(size)
            total += taken
            if taken < size:
                return total
            self.between_batches(time.monotonic() - started)

    def in_list_batches(self, batch: Callable[[int], list[T]], size: int | None = None) -> list[T]:
        """`in_batches` for a step whose batches return what they took: all of it, in order."""
        taken: list[T] = []

        def step(limit: int) -> int:
            got = batch(limit)
            taken.extend(got)
            return len(got)

        self.in_batches(step, size)
        return taken

    def in_ordered_batches(self, batch: Callable[[Any, int], tuple[int, Any]], first: Any) -> int:
        """`in_batches` for a step that walks the tasks in key order (a seq, an id), so that no
        batch reads again the rows of those before it: `batch(after, size)` takes up to `size`
        tasks whose key is above `after`, and returns how many it took and the last key it
        read (None when none), where the next batch starts. The first starts after `first`."""
        after = first

        def step(size: int) -> int:
            nonlocal after
            taken, last = batch(after, size)
            after = after if last is None else last
            return taken

        return self.in_batches(step)

    def in_id_batches(self, ids: Sequence[str], batch: Callable[[list[str]], int]) -> int:
        """Run `batch(chunk)` — one atomic step over those ids, returning how many tasks it
        took — for each chunk of up to `maintenance_batch` of `ids` (each id once), pausing
        between chunks as `in_batches` does; returns the total taken."""
        unique = list(dict.fromkeys(ids))
        size = self.maintenance_batch
        total = 0
        for first in range(0, len(unique), size):
            started = time.monotonic()
            total += batch(unique[first : first + size])
            if first + size < len(unique):
                self.between_batches(time.monotonic() - started)
        return total

    def between_batches(self, took: float) -> None:
        """The pause after a batch of a maintenance step that took `took` seconds: BATCH_PAUSE
        times as long."""
        time.sleep(took * BATCH_PAUSE)
