"""The Redis backend's idle wait: BLPOP and the claim script pipelined on one connection.

The server is $SCOTER_TEST_REDIS_URL (default: the local one), each test in a fresh key prefix;
without a server the tests are skipped, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from conftest import redis_prefix_url

from scoter.storage.base import NewTask
from scoter.storage.redis import RedisStorage

QUEUE = "default"
LEASE = 30.0


@pytest.fixture
def storage() -> Iterator[RedisStorage]:
    opened = RedisStorage.from_url(redis_prefix_url())
    yield opened
    keys = opened.client.keys(f"{opened.prefix}:*")
    if keys:
        opened.client.delete(*keys)
    opened.close()


def _enqueue(storage: RedisStorage, task_id: str) -> None:
    storage.enqueue([NewTask(task_id, "noop", QUEUE, b"[]")])


def test_the_claim_runs_again_after_the_server_lost_its_scripts(storage: RedisStorage) -> None:
    _enqueue(storage, "a")
    storage.client.script_flush()

    [lease] = storage.wait_and_claim([QUEUE], 1, LEASE, "c", 1.0)

    assert lease.id == "a"
    _enqueue(storage, "b")
    assert [x.id for x in storage.wait_and_claim([QUEUE], 1, LEASE, "c", 1.0)] == ["b"]


def test_a_refused_wait_raises_unless_the_claim_took_tasks(storage: RedisStorage) -> None:
    wake = f"{storage.prefix}:{{{QUEUE}}}:wake"
    _enqueue(storage, "a")
    storage.client.set(wake, "not a list")

    [lease] = storage.wait_and_claim([QUEUE], 1, LEASE, "c", 1.0)  # the claim ran: kept

    assert lease.id == "a"
    storage.client.set(wake, "not a list")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        storage.wait_and_claim([QUEUE], 1, LEASE, "c", 1.0)
    storage.client.delete(wake)
    _enqueue(storage, "b")  # the connection is still in step: replies match their calls
    assert [x.id for x in storage.wait_and_claim([QUEUE], 1, LEASE, "c", 1.0)] == ["b"]
