"""A backend that keeps no unique keys, locks or limits (a Redis Cluster, for now) says so when
asked to, finds none when read, and claims as always: an app with limited tasks is refused
before its consumer starts, naming the backends that keep them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scoter import ConfigurationError, Scoter
from scoter.storage.base import Storage
from scoter.storage.coordination import TaskLimit

from .helpers import LEASE, QUEUE, enqueue, new_task

REFUSED = "not kept on a Redis Cluster yet: a single Redis server"


def test_it_refuses_what_it_does_not_keep_and_claims_as_always(storage: Storage) -> None:
    if storage.coordination:
        pytest.skip("this backend keeps unique keys, locks and limits")
    storage.set_limits([TaskLimit("app.work")])  # what a consumer of unlimited tasks stores
    for refused in (
        lambda: storage.set_limits([TaskLimit("app.work", concurrency=2)]),
        lambda: storage.acquire_lock("x", "owner", ttl=30),
        lambda: storage.take_rate("x", 1, 1.0),
        lambda: storage.reset_rate("x"),
        lambda: storage.enqueue_unique([replace(new_task("u"), unique_key="k")]),
    ):
        with pytest.raises(ConfigurationError, match=REFUSED):
            refused()
    assert storage.locks() == [] and storage.flush_locks() == [] and storage.limit_states() == []
    assert storage.enqueue_unique([new_task("plain")]) == ["plain"]
    enqueue(storage, "more")
    assert sorted(lease.id for lease in storage.claim_ahead([QUEUE], 5, LEASE, "c1")) == [
        "more", "plain",
    ]  # fmt: skip

    app = Scoter("limited", storage)

    @app.task(concurrency=1)
    def one_at_a_time() -> None: ...

    with pytest.raises(ConfigurationError, match="one_at_a_time have concurrency or rate"):
        app.consumer()
