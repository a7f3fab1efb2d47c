"""A Redis Cluster of three primaries on loopback ports, with real `scoter worker` processes.

Many queues spread over the primaries; a consumer SIGKILLed mid-run loses nothing; a queue's
slot migrated to another primary (CLUSTER SETSLOT ... MIGRATING/IMPORTING and MIGRATE, key batch
by key batch, while consumers ack, claim and heartbeat and a producer enqueues) loses nothing,
runs nothing twice and leaves no consumer stuck on MOVED. The cluster is this module's own and
is stopped after it; without redis-server the tests are skipped (they fail in CI).
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Env

from scoter import Message
from scoter.exceptions import ConfigurationError
from scoter.local_cluster import LocalCluster, free_ports, missing
from scoter.states import State
from scoter.storage._redis_cluster_sweeps import _encode
from scoter.storage._redis_routing import Call
from scoter.storage.base import Ack, NewTask
from scoter.storage.redis import RedisStorage
from scoter.storage.redis_cluster import RedisClusterStorage

QUEUES = [f"q{i}" for i in range(12)]
MIGRATE_BATCH = 10
"""Keys per MIGRATE: the slot is split between two nodes for several batches."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    problem = missing()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    with (
        tempfile.TemporaryDirectory(prefix="scoter-cluster-") as directory,
        LocalCluster(free_ports(3), Path(directory)) as started,
    ):
        yield started


@pytest.fixture
def cluster_env(
    cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    env = Env(tmp_path, monkeypatch, f"{cluster.url}?prefix=t{uuid.uuid4().hex}")
    yield env
    env.close()


def _keys_by_port(cluster: LocalCluster, prefix: str) -> dict[int, int]:
    counts = {}
    for port in cluster.ports:
        client = cluster.client(port)
        counts[port] = sum(1 for _ in client.scan_iter(f"{prefix}:*", count=1000))
        client.close()
    return counts


def _prefix(env: Env) -> str:
    return env.url.rpartition("prefix=")[2]


def _done(env: Env) -> int:
    return sum(n for (_, state), n in env.app.storage.counts().items() if state is State.DONE)


def test_queues_spread_over_the_primaries_and_a_killed_consumer_loses_nothing(
    cluster: LocalCluster, cluster_env: Env
) -> None:
    env = cluster_env
    messages = [Message("sleepy", (0.05,), queue=QUEUES[i % len(QUEUES)]) for i in range(240)]
    env.app.enqueue_many(messages)
    keys = _keys_by_port(cluster, _prefix(env))
    assert sum(1 for n in keys.values() if n) >= 2, keys

    queues = [arg for q in QUEUES for arg in ("-Q", q)]
    consumers = [env.start("-w", "4", "--lease", "2", *queues) for _ in range(3)]
    env.wait_for(lambda: _done(env) >= 80, 60, "a third of the tasks")
    consumers[0].send(signal.SIGKILL)
    env.start("-w", "4", "--lease", "2", *queues)
    env.wait_for(lambda: _done(env) == len(messages), 90, "every task")

    assert {env.state(m.id) for m in messages} == {State.DONE}
    finished = [r[0] for r in env.runs("finished")]
    assert set(finished) == {m.id for m in messages}
    assert len(finished) - len(set(finished)) <= 4, "only the killed consumer's tasks run twice"
    _assert_no_errors(env)


def test_a_slot_migrated_under_running_consumers_loses_nothing(
    cluster: LocalCluster, cluster_env: Env
) -> None:
    env = cluster_env
    first = [Message("sleepy", (0.05,), queue="mover") for _ in range(300)]
    env.app.enqueue_many(first)
    consumers = [env.start("-w", "4", "--lease", "10", "-Q", "mover") for _ in range(2)]
    env.wait_for(lambda: _done(env) >= 20, 60, "the first tasks")

    produced: list[str] = []
    producer = threading.Thread(target=_produce, args=(env, produced), daemon=True)
    producer.start()
    source = cluster.migration(f"{_prefix(env)}:{{mover}}:").run(MIGRATE_BATCH, 0.05).source
    producer.join(30)
    assert len(produced) == 60, "every enqueue during the migration returned"
    assert _done(env) < len(first), "the consumers were busy throughout the migration"

    ids = [m.id for m in first] + produced
    env.wait_for(lambda: _done(env) == len(ids), 60, "every task")
    assert {env.state(i) for i in ids} == {State.DONE}
    finished = [r[0] for r in env.runs("finished")]
    assert sorted(finished) == sorted(ids), "each task ran once"
    assert _only_directory(cluster, source, _prefix(env)), "the queue's keys all moved"

    late = env.app.enqueue_message(Message("sleepy", (0.0,), queue="mover"))  # on the new owner
    env.wait_for(lambda: env.state(late.id) is State.DONE, 10, "a task enqueued after")
    assert all(c.proc.poll() is None for c in consumers)
    _assert_no_errors(env)


def _assert_no_errors(env: Env) -> None:
    logs = "".join(w.log() for w in env.workers)
    for sign in ("Traceback", "storage unavailable", "MOVED", "ERROR"):
        assert sign not in logs, logs[-3000:]


def _produce(env: Env, produced: list[str]) -> None:
    for _ in range(60):
        message = Message("sleepy", (0.05,), queue="mover")
        produced.append(env.app.enqueue_message(message).id)
        time.sleep(0.01)


def _only_directory(cluster: LocalCluster, port: int, prefix: str) -> bool:
    """Whether the keys of the prefix on `port` are the id directory's and P:queues only."""
    client = cluster.client(port)
    keys = [k.decode() for k in client.scan_iter(f"{prefix}:*", count=1000)]
    client.close()
    return all("{" not in k for k in keys)


# -- the storage alone, on the same cluster ----------------------------------------------------


@pytest.fixture
def storage(cluster: LocalCluster) -> Iterator[RedisClusterStorage]:
    opened = RedisClusterStorage.from_url(f"{cluster.url}?prefix=t{uuid.uuid4().hex}")
    yield opened
    opened.close()


def test_an_ack_that_meets_moved_lands_on_the_new_owner(
    cluster: LocalCluster, storage: RedisClusterStorage
) -> None:
    storage.enqueue([NewTask("a", "app.x", "moved", b"")])
    [lease] = storage.claim(["moved"], 1, 30.0, "c1")
    cluster.migration(f"{storage.prefix}:{{moved}}:").run()  # this storage's map is now stale

    assert storage.ack(lease.token, b"result", None)
    info = storage.get("a")
    assert info is not None and info.state is State.DONE and info.result == b"result"


def test_a_call_on_a_migrating_slot_waits_for_the_migration_to_end(
    cluster: LocalCluster, storage: RedisClusterStorage
) -> None:
    storage.enqueue([NewTask(f"t{i}", "app.x", "busy", b"") for i in range(20)])
    leases = storage.claim(["busy"], 20, 30.0, "c1")
    migration = cluster.migration(f"{storage.prefix}:{{busy}}:")
    migration.begin()
    migration.move(batch=5)  # hashes and indexes split between the two nodes until `end`
    acked: list[bool] = []
    acking = threading.Thread(
        target=lambda: acked.extend(storage.ack(x.token, None, None) for x in leases)
    )
    acking.start()
    time.sleep(0.3)
    assert acked == [], "no script runs while the slot is split"
    migration.end()
    acking.join(10)

    assert acked == [True] * 20
    assert storage.counts() == {("busy", State.DONE): 20}


def test_deleted_tasks_leave_the_directory(
    cluster: LocalCluster, storage: RedisClusterStorage
) -> None:
    storage.enqueue([NewTask(f"t{i}", "app.x", f"q{i % 3}", b"") for i in range(30)])
    for queue in ("q0", "q1", "q2"):
        for lease in storage.claim([queue], 10, 30.0, "c1"):
            assert storage.ack(lease.token, None, 0.0)
    assert storage.expire_results(time.time() + 1) == 30

    assert _directory_size(cluster, storage.prefix) == 0
    assert storage.get("t0") is None


def test_get_finds_a_task_whose_directory_entry_is_missing(storage: RedisClusterStorage) -> None:
    storage.enqueue([NewTask("lost", "app.x", "q", b"")])
    storage.router.call(Call(storage._bucket("lost"), ("HDEL", storage._bucket("lost"), "lost")))

    info = storage.get("lost")
    assert info is not None and info.queue == "q"
    assert storage._directory(["lost"]) == {"lost": "q"}, "the entry is written back"


def test_a_slot_left_pending_by_a_dead_enqueuer_is_enqueued_by_the_next_reader(
    storage: RedisClusterStorage,
) -> None:
    tasks = [NewTask("report:100", "app.report", "reports", b"")]
    pending = _encode(100, tasks)  # the compare-and-set's step, then death before the enqueue
    assert storage._call("slot_advance", [storage._periodic], ["report", "", "100", pending])
    assert storage.get("report:100") is None

    assert storage.last_slots(["report"]) == {"report": 100}
    info = storage.get("report:100")
    assert info is not None and info.state is State.QUEUED
    assert storage.last_slots(["report"]) == {"report": 100}
    assert storage.counts() == {("reports", State.QUEUED): 1}


def test_the_first_seeds_may_be_down(cluster: LocalCluster) -> None:
    url = f"redis+cluster://127.0.0.1:1,127.0.0.1:{cluster.ports[1]}?prefix=t{uuid.uuid4().hex}"
    storage = RedisClusterStorage.from_url(url)
    assert storage.enqueue([NewTask("a", "app.x", "q", b"")]) == 1
    storage.close()


def test_a_redis_url_naming_a_cluster_node_says_what_to_use(cluster: LocalCluster) -> None:
    storage = RedisStorage.from_url(f"redis://127.0.0.1:{cluster.ports[0]}/0?prefix=t")
    with pytest.raises(ConfigurationError, match=r"redis\+cluster://"):
        storage.enqueue([NewTask(f"t{i}", "app.x", f"q{i}", b"") for i in range(10)])
    storage.close()


def _directory_size(cluster: LocalCluster, prefix: str) -> int:
    size = 0
    for port in cluster.ports:
        client = cluster.client(port)
        size += sum(client.hlen(k) for k in client.scan_iter(f"{prefix}:ids:*", count=1000))
        client.close()
    return size


def test_a_wait_on_queues_of_several_slots_ends_when_any_of_them_gets_a_task(
    cluster: LocalCluster, storage: RedisClusterStorage
) -> None:
    queues = [f"w{i}" for i in range(6)]
    nodes = {storage.router.node(f"{storage.prefix}:{{{q}}}:").name for q in queues}
    assert len(nodes) >= 2, "the queues' wake-up lists are on several primaries"
    assert storage.wait_and_claim(queues, 10, 30.0, "c1", 0.05) == []
    woke: list[tuple[float, list[str]]] = []

    def wait() -> None:
        leases = storage.wait_and_claim(queues, 10, 30.0, "c1", 5.0)
        woke.append((time.monotonic(), [lease.id for lease in leases]))

    waiting = threading.Thread(target=wait)
    waiting.start()
    time.sleep(0.3)
    sent = time.monotonic()
    storage.enqueue([NewTask("late", "app.x", queues[-1], b"")])
    waiting.join(10)

    assert woke and woke[0][0] - sent < 0.5
    assert woke[0][1] == ["late"]


def test_a_search_that_meets_a_key_already_migrated_waits_for_the_migration(
    cluster: LocalCluster, storage: RedisClusterStorage
) -> None:
    storage.enqueue([NewTask(f"t{i}", "app.find", "finding", b"") for i in range(5)])
    migration = cluster.migration(f"{storage.prefix}:{{finding}}:")
    migration.begin()
    migration.move_keys(f"{storage.prefix}:{{finding}}:t:t2")  # its ready set stays behind
    found: list[list[str]] = []
    searching = threading.Thread(
        target=lambda: found.append([t.id for t in storage.find_tasks("app.find", State.QUEUED)])
    )
    searching.start()
    time.sleep(0.3)
    assert found == [], "a search does not read half a queue"
    migration.move()
    migration.end()
    searching.join(10)

    assert sorted(found[0]) == [f"t{i}" for i in range(5)]


def test_nodes_that_lost_their_scripts_are_sent_them_again(
    cluster: LocalCluster, storage: RedisClusterStorage
) -> None:
    storage.enqueue([NewTask(f"t{i}", "app.x", f"q{i}", b"") for i in range(6)])
    for port in cluster.ports:  # as a restart leaves them
        client = cluster.client(port)
        client.script_flush()
        client.close()

    leases = storage.claim([f"q{i}" for i in range(6)], 6, 30.0, "c1")
    acked, _ = storage.ack_many_and_claim(
        [Ack(lease.token, None, None) for lease in leases], ["q0"], 0, 30.0, "c1"
    )
    assert len(leases) == 6 and acked == [True] * 6
