"""A consumer cut off from its storage by a network partition (a proxy on loopback that stops
forwarding but keeps the sockets open) stops its task before its lease can expire, so that the
consumer that takes the task over never runs it at the same time (DESIGN G2); once the link
heals it goes on consuming without a restart."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Env, drop_postgres_schema, postgres_schema_url, redis_prefix_url
from proxy import PartitionProxy

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


@pytest.mark.parametrize("executor", ["thread", "process", "asyncio"])
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
