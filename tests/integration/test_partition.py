"""A consumer cut off from its storage by a network partition (a proxy on loopback that stops
forwarding but keeps the sockets open) stops its task before its lease can expire, so that the
consumer that takes the task over never runs it at the same time (DESIGN G2); once the link
heals it goes on consuming without a restart."""

from __future__ import annotations

import signal
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Env, drop_postgres_schema, postgres_schema_url, redis_prefix_url
from proxy import PartitionProxy

from scoter import EnqueueError, Message, Scoter
from scoter.cli import EXIT_OVERRUN
from scoter.states import State

LEASE_S = 3.0
TASK_S = 8.0
TICK_S = 0.05


@pytest.fixture(params=["redis", "postgres"])
def cut_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Env, PartitionProxy]]:
    postgres = request.param == "postgres"
    url = postgres_schema_url() if postgres else redis_prefix_url()
    parts = urllib.parse.urlsplit(url)
    proxy = PartitionProxy((parts.hostname or "127.0.0.1", parts.port or 0))
    env = Env(tmp_path, monkeypatch, url)
    yield env, proxy
    proxy.close()
    env.close()
    if postgres:
        drop_postgres_schema(url)


@pytest.mark.parametrize(
    ("cut_env", "executor"),
    [("redis", "thread"), ("redis", "process"), ("postgres", "asyncio"), ("postgres", "process")],
    indirect=["cut_env"],
)  # every executor and both servers, in fewer rounds than all pairs
def test_a_cut_off_consumer_stops_its_task_before_another_may_start_it(
    cut_env: tuple[Env, PartitionProxy], executor: str
) -> None:
    env, proxy = cut_env
    lease = ("--lease", str(LEASE_S), "-k", executor)
    cut_off = env.start("-w", "1", *lease, url=proxy.rewrite(env.url))
    result = env.module.ticks(TASK_S)
    env.wait_for(lambda: env.runs("tick"), 20, "the task to start")

    with proxy.cut():
        other = env.start("-w", "1", *lease)
        env.wait_for(lambda: len(env.runs("started")) == 2, 20, "another consumer to take over")
        takeover = env.runs("started")[1]
        time.sleep(0.5)  # ticks a cut-off attempt still makes would be recorded by now
        first_ticks = [r for r in env.runs("tick") if r[3] == 1]
        assert takeover[3] == 2 and first_ticks[-1][4] < takeover[4], (
            f"the cut-off attempt ticked {first_ticks[-1][4] - takeover[4]:.2f} s after the "
            "takeover started"
        )
        assert "lease lost" in cut_off.log() and "not renewed" in cut_off.log()

    result.get(blocking=True, timeout=30)
    assert [r[3] for r in env.runs("finished")] == [2]
    other.send(2)  # SIGINT: a graceful stop
    assert other.wait(timeout=15) == 0
    after = env.module.ticks(0.1)
    assert after.get(blocking=True, timeout=30) is not None, "the cut-off consumer recovered"
    assert cut_off.proc.poll() is None
    info = env.app.storage.get(result.id)
    assert info is not None and info.state == State.DONE


@pytest.mark.parametrize(
    ("cut_env", "executor"), [("redis", "process"), ("postgres", "thread")], indirect=["cut_env"]
)
def test_a_stop_during_a_partition_ends_within_the_drain_deadline(
    cut_env: tuple[Env, PartitionProxy], executor: str
) -> None:
    env, proxy = cut_env
    drain_s = 3.0
    cut_off = env.start(
        "-w",
        "2",
        "-k",
        executor,
        "--drain-timeout",
        str(drain_s),
        "--lease",
        "5",
        url=proxy.rewrite(env.url),
    )
    result = env.module.sleepy(6.0)  # does not look at stop requests; outlasts the drain
    env.wait_for(lambda: env.runs("started"), 20, "the task to start")
    proxy.blackhole()
    time.sleep(0.5)  # the idle worker's wait is on its way through the cut
    cut_off.send(signal.SIGTERM)
    asked = time.monotonic()
    code = cut_off.wait(timeout=drain_s + 10)
    took = time.monotonic() - asked
    assert took < drain_s + 1.0, f"exited {took:.1f} s after SIGTERM (drain {drain_s} s)"
    assert code == EXIT_OVERRUN, cut_off.log()
    assert "drain deadline passed" in cut_off.log()
    proxy.resume()
    other = env.start("-w", "1", "--lease", "3")
    assert result.get(blocking=True, timeout=60) is not None  # recovered by lease expiry
    other.send(signal.SIGTERM)
    assert other.wait(timeout=15) == 0


def test_a_storage_call_through_a_partition_fails_within_its_deadline(
    cut_env: tuple[Env, PartitionProxy],
) -> None:
    env, proxy = cut_env
    option = "call_timeout" if env.url.startswith("postgres") else "socket_timeout"
    url = f"{proxy.rewrite(env.url)}&{option}=1"
    producer = Scoter("integration", url)
    producer.task(name="integration_app.sleepy")(lambda seconds: None)
    assert producer.storage.counts() is not None  # connected, schema ready
    with proxy.cut():
        asked = time.monotonic()
        with pytest.raises(producer.storage.transient_errors):
            producer.storage.counts()
        took = time.monotonic() - asked
    assert took < 2.5, f"the call took {took:.1f} s with a 1 s deadline"
    producer.storage.close()


def _producer(env: Env, proxy: PartitionProxy, enqueue_timeout: float) -> Scoter:
    """An app on the proxied URL whose calls each give up after a second."""
    option = "call_timeout" if env.url.startswith("postgres") else "socket_timeout"
    producer = Scoter("producer", f"{proxy.rewrite(env.url)}&{option}=1")
    producer.enqueue_timeout = enqueue_timeout
    assert producer.storage.counts() is not None  # connected, schema ready
    return producer


def _messages(count: int) -> list[Message]:
    return [Message("ticks", (0.0,), {}) for _ in range(count)]


def test_an_enqueue_rides_out_a_partition_and_stores_each_task_once(
    cut_env: tuple[Env, PartitionProxy],
) -> None:
    env, proxy = cut_env
    producer = _producer(env, proxy, enqueue_timeout=20.0)
    messages = _messages(50)
    proxy.blackhole()
    threading.Timer(2.5, proxy.resume).start()  # the first try times out, a retry lands
    asked = time.monotonic()
    producer.enqueue_many(messages)
    assert time.monotonic() - asked > 2.0, "the enqueue went through the cut"
    worker = env.start("-w", "4")
    env.wait_for(lambda: len(env.runs("finished")) >= len(messages), 30, "every task to run")
    time.sleep(0.5)  # a task stored twice would run again by now
    finished = [r[0] for r in env.runs("finished")]
    assert sorted(finished) == sorted(m.id for m in messages)
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    producer.storage.close()


def test_an_enqueue_that_gives_up_raises_with_its_ids_and_a_retry_stores_once(
    cut_env: tuple[Env, PartitionProxy],
) -> None:
    env, proxy = cut_env
    producer = _producer(env, proxy, enqueue_timeout=2.0)
    messages = _messages(20)
    with proxy.cut():
        asked = time.monotonic()
        with pytest.raises(EnqueueError) as raised:
            producer.enqueue_many(messages)
        took = time.monotonic() - asked
    assert took < 2.0 + 1.0 + 1.5, f"gave up after {took:.1f} s (enqueue_timeout 2 s)"
    assert raised.value.ids == [m.id for m in messages] and raised.value.stored_unknown
    producer.enqueue_many(messages)  # what the error says to do: the same ids again
    ids = {m.id for m in messages}
    env.wait_for(lambda: all(env.app.storage.get(i) is not None for i in ids), 10, "the tasks")
    assert sum(env.app.storage.counts().values()) == len(messages)
    producer.storage.close()


def test_leases_a_lost_claim_reply_gave_are_handed_back_not_charged(
    cut_env: tuple[Env, PartitionProxy],
) -> None:
    """A busy consumer's writes that also claim (acks with the next claim, claims) go out
    during a cut, time out, and land on the server when the link heals: tasks are leased to a
    consumer that does not know them. It hands them back as soon as storage answers, so they
    run at once, charged nothing, instead of waiting for the lease to expire and coming back
    as crashes."""
    env, proxy = cut_env
    option = "call_timeout" if env.url.startswith("postgres") else "socket_timeout"
    lease_s = 20.0
    messages = [Message("ticks", (0.02,), {}) for _ in range(300)]
    results = env.app.enqueue_many(messages)
    url = f"{proxy.rewrite(env.url)}&{option}=1"
    worker = env.start("-w", "4", "--lease", str(lease_s), url=url)
    env.wait_for(lambda: len(env.runs("finished")) >= 20, 20, "the consumer to be busy")
    with proxy.cut():
        time.sleep(3.0)  # writes time out and are retried, each held by the cut
    healed = time.monotonic()
    for result in results:
        result.get(blocking=True, timeout=lease_s / 2)
    took = time.monotonic() - healed
    histories = [env.app.storage.get(r.id).history for r in results]  # type: ignore[union-attr]
    outcomes = [entry["outcome"] for history in histories for entry in history]
    assert "handed back" in outcomes, "no claim landed late"
    assert "crashed" not in outcomes, [h for h in histories if len(h) > 1]
    assert took < lease_s / 2, f"the tasks ran {took:.1f} s after the link healed"
    assert "handed back" in worker.log()
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
