"""The benchmark's Redis counter: what tasks push on their own sockets, the harness reads back."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator

import pytest

from bench import counter as counter_module
from bench.counter import Counter, _words
from bench.settings import ENV_COUNTER, ENV_PREFIX

redis = pytest.importorskip("redis")
URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def counter() -> Iterator[Counter]:
    try:
        redis.Redis.from_url(URL).ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {URL}")
    made = Counter(URL, prefix=f"test-counter-{uuid.uuid4().hex[:8]}")
    yield made
    redis.Redis.from_url(URL).delete(made.key)
    made.close()


def test_every_push_from_every_thread_is_counted_in_order_of_time(counter: Counter) -> None:
    def push(n: int) -> None:
        for _ in range(n):
            counter.incr()
        counter.close()

    threads = [threading.Thread(target=push, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = counter.read()
    assert done.count == 200
    assert done.first is not None and done.last is not None and done.first <= done.last
    # the pushes landed in the database of the URL, not database 0
    assert redis.Redis.from_url(URL).llen(counter.key) == 200


def test_async_tasks_push_on_pooled_connections_of_their_own(
    counter: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_COUNTER, URL)
    monkeypatch.setenv(ENV_PREFIX, counter.prefix)
    idle = counter_module._idle_pushers

    async def two_rounds() -> None:
        for _ in range(2):
            await asyncio.gather(*(counter_module.aincr() for _ in range(10)))
        assert 1 <= len(idle) <= 10  # one connection per task awaiting a reply, reused
        for pusher in idle:
            pusher.close()
        idle.clear()

    asyncio.run(two_rounds())
    done = counter.read()
    assert done.count == 20
    assert done.first is not None and done.last is not None and done.first <= done.last


def test_a_refused_command_raises_with_the_servers_message(counter: Counter) -> None:
    redis.Redis.from_url(URL).set(counter.key, "not a list")
    with pytest.raises(RuntimeError, match="WRONGTYPE"):
        counter.incr()


def test_a_tls_url_is_refused_with_what_to_use_instead() -> None:
    with pytest.raises(ValueError, match="use a redis:// URL"):
        Counter("rediss://127.0.0.1:6379/14").incr()


def test_auth_words_come_from_the_urls_percent_encoded_user_info() -> None:
    assert _words(None, "p%40ss") == [b"p@ss"]
    assert _words("me", "pw") == [b"me", b"pw"]
