"""Redis Cluster storage: each queue's keys on a slot of their own, no script crossing slots.

The queue's keys and scripts are those of `RedisStorage` (every key of queue q carries the hash
tag {q}); each script is given the queue's base `P:{q}:` alone, which confines it to the queue's
slot (ONE_QUEUE in lib.lua), and is sent to the primary serving that slot (`Router`, which
follows MOVED and waits out migrations). What spans queues is done here, per queue, and merged:

- the id directory: buckets `P:ids:<n>` (hash: id -> queue) on slots of their own, written
  before a task is stored (ids_take.lua) and cleaned after it is deleted (forgotten.lua,
  ids_forget.lua); `get`, `purge` and `requeue_dead` by id read it;
- `P:queues`, the set of queues, written before a queue's first task: the sweeps (`rescue`,
  `promote`, `expire_results`, `counts`, `list_tasks`, purges) visit each queue in turn;
- a claim from several queues: their heads read, then each queue's share claimed;
- periodic slots (`P:periodic`): advanced with the slot's tasks kept as pending in one step,
  then enqueued (see slot_advance.lua).

docs/redis.md ("Redis Cluster") argues why the guarantees hold and says what is not atomic.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any, cast

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

from scoter.config import quote_userinfo, redact
from scoter.exceptions import ConfigurationError
from scoter.storage._redis_cluster_coordination import Uncoordinated
from scoter.storage._redis_cluster_flows import ClusterFlows
from scoter.storage._redis_cluster_sweeps import ClusterSweeps, flat
from scoter.storage._redis_cluster_time import ClusterTime
from scoter.storage._redis_replies import new_tokens, result_args, us, wake_keys
from scoter.storage._redis_routing import Call, Router
from scoter.storage._redis_scripts import CLUSTER_SCRIPTS, load_scripts
from scoter.storage.base import (
    CALL_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    Ack,
    Lease,
    NewTask,
    Rescued,
    Storage,
    with_flows,
)
from scoter.storage.redis import BLOCK_MIN_S, DEFAULT_PREFIX, RedisStorage

log = logging.getLogger("scoter.storage")

SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SEQ_DIGITS = 16
"""A ready member starts with its seq in this many digits (see lib.lua)."""
TAKE_TRIES = 3
"""Rounds an enqueue makes to take an id another queue's finished task holds (each races only
with an enqueue of the same id on a third queue)."""


class RedisClusterStorage(ClusterFlows, Uncoordinated, ClusterTime, ClusterSweeps):
    """Storage on a Redis Cluster (redis-py's `RedisCluster`). Safe for many processes."""

    transient_errors: tuple[type[Exception], ...] = (
        *RedisStorage.transient_errors,
        RedisClusterException,  # no node of the cluster answered
    )

    def __init__(
        self,
        client: RedisCluster | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        url: str | None = None,
    ) -> None:
        """
        :param client: the cluster client; default one whose seed is localhost:6379.
        :param prefix: the namespace every key starts with (no braces: each queue's keys carry
            their own hash tag).
        :param url: the URL the client was opened from, kept redacted as `self.url`.
        """
        _check_prefix(prefix)
        if client is None:
            client = _cluster(lambda: RedisCluster(**_options()), "localhost:6379")
        super().__init__(cast(redis.Redis, client), prefix=prefix, url=url or _describe(client))
        self.cluster = client
        self._scripts.update(load_scripts(client, CLUSTER_SCRIPTS))
        self.router = Router(client, self._scripts, wait_s=CALL_TIMEOUT_S)
        self._known: set[str] = set()
        """Queues this storage put in P:queues or claimed from: swept even if the set lost
        them (a failover can lose a write)."""
        self._local_cluster = threading.local()

    @classmethod
    def from_url(cls, url: str) -> RedisClusterStorage:
        """redis+cluster://[[user]:password@]host:port[,host:port...][?options], or
        rediss+cluster:// for TLS: one or more seed nodes of the cluster.

        Options are redis-py's (socket_timeout, ssl_cert_reqs, ...) plus `prefix`, the key
        namespace (default "scoter"). A call's reply is awaited at most CALL_TIMEOUT_S and a
        connection CONNECT_TIMEOUT_S unless the URL says otherwise.
        """
        split = urllib.parse.urlsplit(quote_userinfo(url))
        scheme = SCHEMES.get(split.scheme.lower())
        userinfo, _, hosts = split.netloc.rpartition("@")
        seeds = [_seed(url, h) for h in hosts.split(",") if h]
        if scheme is None or not seeds or split.path not in ("", "/", "/0"):
            raise ConfigurationError(
                f"bad Redis Cluster URL {redact(url)!r}: write redis+cluster://host:port"
                "[,host:port...][?prefix=name] (database 0 only)"
            )
        query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        prefix = dict(query).get("prefix", DEFAULT_PREFIX)
        _check_prefix(prefix)
        rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "prefix"])
        at = f"{userinfo}@" if userinfo else ""
        first = f"{scheme}://{at}{seeds[0].netloc}/0?{rest}"
        nodes = [ClusterNode(s.host, s.port) for s in seeds[1:]]  # type: ignore[no-untyped-call]

        def connect() -> RedisCluster:
            try:
                return RedisCluster.from_url(first, startup_nodes=nodes, **_options())
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(f"bad Redis Cluster URL {redact(url)!r}: {exc}") from exc

        return cls(_cluster(connect, redact(url)), prefix=prefix, url=url)

    def _connection_options(self, client: Any) -> dict[str, Any]:
        return cast(dict[str, Any], client.get_connection_kwargs())

    def close(self) -> None:
        self.router.close()
        super().close()

    def _connection(self) -> Any:
        """`RedisStorage`'s one connection per thread has no place on a cluster: every call
        goes through `router`, to its slot's primary."""
        raise NotImplementedError("a call on a Redis Cluster must go through its router")

    # -- producers -------------------------------------------------------------------------

    def not_stored(self, exc: Exception) -> bool:
        """An enqueue that failed before it sent a task to its queue stored nothing."""
        return exc is getattr(self._local_cluster, "unsent", None)

    def enqueue(self, tasks: Sequence[NewTask], *, restart_finished: bool = True) -> int:
        """The ids first (the directory, P:queues), then each queue's tasks in one script: a
        task is stored when its id is taken. The tasks of one queue are stored atomically, the
        call as a whole is not (a failure may leave some queues' tasks stored)."""
        firsts: dict[str, NewTask] = {}
        for t in tasks:
            firsts.setdefault(t.id, t)  # an id named twice: its first task (as one script)
        unique = list(firsts.values())
        if not unique:
            return 0
        try:
            self._remember(t.queue for t in unique)
            taken = self._take_ids(unique, restart_finished)
        except Exception as exc:
            self._local_cluster.unsent = exc
            raise
        by_queue: dict[str, list[Any]] = {}
        now = time.time()
        for t in taken:
            eta = "" if t.eta is None else us(t.eta - now)
            row = (t.id, t.name, t.queue, t.payload, t.priority, eta, t.max_crashes)
            by_queue.setdefault(t.queue, [int(restart_finished)]).extend(row)
        # One queue after the other, so that ages (seqs, from each node's clock) keep the
        # order of the call across queues.
        return sum(int(self._call("enqueue", [self._base(q)], a)) for q, a in by_queue.items())

    def _take_ids(self, tasks: list[NewTask], restart: bool) -> list[NewTask]:
        """The tasks whose ids this enqueue took in the directory. An id the directory places
        in another queue is taken when that queue lets it go (id_leave.lua)."""
        taken, conflicts = self._take(tasks, {})
        for _ in range(TAKE_TRIES):
            if not conflicts:
                break
            leave = [
                self._eval("id_leave", [self._base(q)], [int(restart), t.id]) for t, q in conflicts
            ]
            movable = {t.id: q for (t, q), r in zip(conflicts, self._run(leave), strict=True) if r}
            more, conflicts = self._take([t for t, _ in conflicts if t.id in movable], movable)
            taken += more
        ids = {t.id for t in taken}
        return [t for t in tasks if t.id in ids]  # in the call's order: their ages follow it

    def _take(
        self, tasks: list[NewTask], movable: dict[str, str]
    ) -> tuple[list[NewTask], list[tuple[NewTask, str]]]:
        """One round of ids_take.lua: the tasks taken, and the others with the queue the
        directory places their id in."""
        by_bucket: dict[str, list[NewTask]] = {}
        for t in tasks:
            by_bucket.setdefault(self._bucket(t.id), []).append(t)
        calls = [
            self._eval("ids_take", [bucket], [v for t in group for v in _take_args(t, movable)])
            for bucket, group in by_bucket.items()
        ]
        taken: list[NewTask] = []
        conflicts: list[tuple[NewTask, str]] = []
        for group, reply in zip(by_bucket.values(), self._run(calls), strict=True):
            for t, known in zip(group, reply, strict=True):
                if known:
                    conflicts.append((t, known.decode("utf-8", "replace")))
                else:
                    taken.append(t)
        return taken, conflicts

    # -- consumers -------------------------------------------------------------------------

    def claim(self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str) -> list[Lease]:
        if n <= 0 or not queues:
            return []
        self._claiming(queues)
        bases = self._bases(queues)
        if len(bases) == 1:
            return self._leases(
                self._call("claim", bases, [n, us(lease_s), consumer_id, *new_tokens(n)])
            )
        return self._claim_shares(*self._shares(bases, n), lease_s, consumer_id)

    def _shares(self, bases: list[str], n: int) -> tuple[dict[str, int], dict[str, int]]:
        """How many of the `n` best queued tasks of all `bases` each base holds, and their
        ranks by id: the heads are read without taking them (others may claim meanwhile; the
        claims then take what is there)."""
        heads = self.router.run(
            [Call(b, ("ZRANGE", b + "ready", 0, n - 1, "WITHSCORES")) for b in bases]
        )
        picks: list[tuple[float, bytes, str]] = []
        for base, head in zip(bases, heads, strict=True):
            if isinstance(head, list):  # not a wrong-typed key: that queue's claim reports it
                pairs = flat(head)
                picks += [(float(pairs[i + 1]), pairs[i], base) for i in range(0, len(pairs), 2)]
        shares = dict.fromkeys(bases, 0)
        ranks: dict[str, int] = {}
        for rank, (_, member, base) in enumerate(sorted(picks)[:n]):
            shares[base] += 1
            ranks[member[SEQ_DIGITS:].decode("utf-8", "replace")] = rank
        return shares, ranks

    def _claim_shares(
        self, shares: dict[str, int], ranks: dict[str, int], lease_s: float, consumer_id: str
    ) -> list[Lease]:
        calls = [
            self._eval("claim", [b], [k, us(lease_s), consumer_id, *new_tokens(k)])
            for b, k in shares.items() if k
        ]  # fmt: skip
        leases = [lease for reply in self._run(calls) for lease in self._leases(reply)]
        return sorted(leases, key=lambda lease: ranks.get(lease.id, len(ranks)))

    def ack_many_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """One script per queue the acks name, pipelined over the nodes; a claim from one
        queue rides with that queue's acks, a claim from several follows them."""
        if with_flows(acks):
            return self._ack_flows_and_claim(acks, queues, n, lease_s, consumer_id)
        groups: dict[str, list[int]] = {}
        for i, a in enumerate(acks):
            base = self._token_base(a.token)
            if base is not None:
                groups.setdefault(base, []).append(i)
        bases = self._bases(queues) if n > 0 else []
        riding = bases[0] if len(bases) == 1 else None
        if riding is not None:
            groups.setdefault(riding, [])
            self._claiming(queues)
        calls = [
            self._acks_call(base, [acks[i] for i in indices], n if base == riding else 0,
                            lease_s, consumer_id)
            for base, indices in groups.items()
        ]  # fmt: skip
        acked = [False] * len(acks)
        leases: list[Lease] = []
        for (base, indices), reply in zip(groups.items(), self._run(calls), strict=True):
            for i, flag in zip(indices, reply, strict=False):
                acked[i] = flag == 1
            if base == riding:
                leases = self._leases(reply[len(indices) :])
        if riding is None and bases:
            leases = self.claim(queues, n, lease_s, consumer_id)
        return acked, leases

    def _acks_call(
        self, base: str, acks: list[Ack], n: int, lease_s: float, consumer_id: str
    ) -> Call:
        """ack_many_and_claim.lua for the acks of one queue, and a claim of `n` from it."""
        args: list[Any] = [len(acks), n, us(lease_s), consumer_id]
        for a in acks:
            args += (a.token, *result_args(a.result, a.result_ttl))
        keys = [base] * (len(acks) + (n > 0))
        return self._eval("ack_many_and_claim", keys, [*args, *new_tokens(n)])

    def _claiming(self, queues: Sequence[str]) -> None:
        """Queues this storage claims from are swept by it (see `_all_queues`)."""
        if not self._known.issuperset(queues):
            self._known.update(queues)

    def rescue(self, now: float) -> list[Rescued]:
        """Expired leases, queue by queue, then the flows' hand-offs that callers who died
        left half done (`ClusterFlows.complete_hand_offs`)."""
        rescued = super().rescue(now)
        self.complete_hand_offs()
        return rescued

    def heartbeat(self, tokens: Iterable[str], lease_s: float) -> set[str]:
        """One script per queue the tokens name, pipelined over the nodes."""
        lost: set[str] = set()
        groups: dict[str, list[str]] = {}
        for token in set(tokens):
            base = self._token_base(token)
            if base is None:
                lost.add(token)
            else:
                groups.setdefault(base, []).append(token)
        lease = us(lease_s)
        calls = [self._eval("heartbeat", [b], [lease, len(g), *g]) for b, g in groups.items()]
        for reply in self._run(calls):
            lost.update(t.decode() for t in reply)
        return lost

    def wait(self, queues: Sequence[str], timeout: float) -> None:
        """BLPOP of the queues' wake-up lists, each on its own slot: one BLPOP a queue, on a
        connection of its own, all at once (`Router.wait_any`)."""
        timeout = min(timeout, self._block_max)
        if queues and timeout >= BLOCK_MIN_S:
            self.router.wait_any(wake_keys(self._bases(queues)), timeout)

    def wait_and_claim(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str, timeout: float
    ) -> list[Lease]:
        """One queue: its BLPOP and claim pipelined on one connection, as `RedisStorage` does."""
        timeout = min(timeout, self._block_max)
        bases = self._bases(queues)
        if len(bases) != 1 or n <= 0 or timeout < BLOCK_MIN_S:  # `wait`, then `claim`
            return Storage.wait_and_claim(self, queues, n, lease_s, consumer_id, timeout)
        self._claiming(queues)
        claim = self._eval("claim", bases, [n, us(lease_s), consumer_id, *new_tokens(n)])
        _, reply = self.router.run([self._blpop(bases[0], timeout), claim])
        if isinstance(reply, redis.ResponseError):
            raise reply
        return self._leases(reply)

    def _blpop(self, base: str, timeout: float) -> Call:
        key = wake_keys([base])[0]
        return Call(key, ("BLPOP", key, f"{timeout:.3f}"), wake=True)


def _check_prefix(prefix: str) -> None:
    if not prefix:
        raise ConfigurationError("the Redis key prefix must not be empty")
    if "{" in prefix or "}" in prefix:
        raise ConfigurationError(
            f"the Redis Cluster key prefix {prefix!r} must not hold braces: each queue's "
            "keys carry a hash tag of their own, so that queues spread over the primaries"
        )


def _take_args(task: NewTask, movable: dict[str, str]) -> tuple[str, str, str]:
    """What ids_take.lua takes per id: the id, its queue, the queue it may leave."""
    return task.id, task.queue, movable.get(task.id, "")


class _Seed:
    __slots__ = ("host", "port")

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _seed(url: str, where: str) -> _Seed:
    try:
        split = urllib.parse.urlsplit(f"//{where}")
        host, port = split.hostname, split.port or 6379
    except ValueError as exc:
        raise ConfigurationError(f"bad Redis Cluster URL {redact(url)!r}: {exc}") from exc
    if not host:
        raise ConfigurationError(f"bad Redis Cluster URL {redact(url)!r}: a seed has no host")
    return _Seed(host, port)


def _options() -> dict[str, Any]:
    """Options of the clients this storage builds; options in a URL take precedence."""
    return {
        "socket_timeout": CALL_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
    }


def _cluster(connect: Any, where: str) -> RedisCluster:
    """`connect()`; a cluster no seed of which answers is an outage (redis.ConnectionError)."""
    try:
        return cast(RedisCluster, connect())
    except RedisClusterException as exc:
        raise redis.ConnectionError(
            f"no node of the Redis Cluster at {where} answered: {exc}"
        ) from exc


def _describe(client: RedisCluster) -> str:
    """A URL naming the seeds a client given without one started from."""
    nodes = client.nodes_manager.startup_nodes.values()
    return "redis+cluster://" + ",".join(sorted(n.name for n in nodes))
