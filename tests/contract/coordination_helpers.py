"""Process bodies of the coordination contract tests (no pytest here: spawned processes import
it): many processes race for one lock, one unique key, one concurrency limit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from scoter.storage.base import Storage

from .helpers import LEASE, QUEUE, new_task


def race_for_lock(
    open_storage: Callable[[str], Storage], location: str, owner: str, start: Any, out: Any
) -> None:
    """Try once to take lock `race` for `owner`; report whether it got it."""
    try:
        storage = open_storage(location)
        start.wait(30)
        won = storage.acquire_lock("race", owner, ttl=30.0, holder=owner)
        storage.close()
        out.put((won, None))
    except Exception as exc:
        out.put((False, repr(exc)))


def race_for_key(
    open_storage: Callable[[str], Storage], location: str, prefix: str, start: Any, out: Any
) -> None:
    """Enqueue ten tasks of unique key `race`, one call each; report the ids returned."""
    try:
        storage = open_storage(location)
        start.wait(30)
        ids = []
        for i in range(10):
            task = replace(new_task(f"{prefix}-{i}", name="app.unique"), unique_key="race")
            ids.extend(storage.enqueue_unique([task]))
        storage.close()
        out.put((ids, None))
    except Exception as exc:
        out.put(([], repr(exc)))


def claim_limited(
    open_storage: Callable[[str], Storage], location: str, consumer: str, start: Any, out: Any
) -> None:
    """Claim one at a time until nothing is claimable; report the ids (none acked)."""
    try:
        storage = open_storage(location)
        start.wait(30)
        claimed = []
        for _ in range(20):
            claimed.extend(lease.id for lease in storage.claim([QUEUE], 2, LEASE, consumer))
        storage.close()
        out.put((claimed, None))
    except Exception as exc:
        out.put(([], repr(exc)))
