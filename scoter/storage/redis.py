"""Redis storage: every lifecycle step is one Lua script; idle consumers block on a wake-up list.

The scripts live in `redis_scripts/`, each opening with the keys it touches; docs/redis.md has
the key layout, what each persistence setting guarantees (DESIGN G9) and the Cluster notes.

Times come from the server's clock (`TIME`), so consumers on many hosts agree on lease expiry
and etas. A time passed in — an eta, rescue's `now` — is read as an offset from this host's
clock at the call and applied to the server's clock: with clocks that agree it means the same,
with clocks that drift a delay still lasts as long as asked.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import urllib.parse
import weakref
from collections.abc import Collection, Iterable, Sequence
from typing import Any, cast

import redis
from redis.exceptions import (
    ClusterCrossSlotError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    TryAgainError,
)

from scoter.config import quote_userinfo, redact
from scoter.display import one_line
from scoter.exceptions import ConfigurationError
from scoter.states import CORRUPT, State
from scoter.storage._records import Fields, corrupt_error, last_line
from scoter.storage._redis_connection import (
    REFUSED,
    Held,
    client_options,
    describe,
    error_of,
)
from scoter.storage._redis_coordination import RedisCoordination
from scoter.storage._redis_data import RedisData
from scoter.storage._redis_flows import RedisFlows
from scoter.storage._redis_replies import (
    LEASE_FIELDS,
    LEASE_NAMES,
    TOKEN_HEX,
    US,
    lease_of,
    new_tokens,
    report,
    reported,
    rescued_of,
    result_args,
    task_info,
    us,
    wake_keys,
)
from scoter.storage._redis_scripts import load_scripts
from scoter.storage._redis_time import RedisTime
from scoter.storage.base import (
    EXPIRED,
    SPARED,
    UNSTARTED,
    Ack,
    Lease,
    NewTask,
    Rescued,
    Storage,
    TaskInfo,
    with_flows,
)

log = logging.getLogger("scoter.storage")

DEFAULT_PREFIX = "scoter"
RESCUE_BATCH = 50
"""Tasks one batch of `rescue` moves at most: the crash rule costs ~40 µs a task (~2 ms)."""
BLOCK_MARGIN_S = 0.5
"""`wait` blocks at most this much less than the socket timeout, which would cut it short."""
BLOCK_MIN_S = 0.001
"""Shorter waits are not worth a blocking call (and BLPOP's 0 would block forever)."""
FIND_PAGE = 500
"""Tasks one call of find.lua reads at most (~1 ms)."""
FIND_SETS = {State.SCHEDULED: "scheduled", State.QUEUED: "ready", State.RUNNING: "leases",
             State.DONE: "done", State.DEAD: "dead"}  # fmt: skip
"""The sorted set holding each state's tasks (INDEX in lib.lua)."""


class RedisStorage(RedisData, RedisFlows, RedisCoordination, RedisTime, Storage):
    """Storage in Redis (standalone, or a primary with replicas). Safe for many processes."""

    transient_errors: tuple[type[Exception], ...] = (
        redis.ConnectionError,  # refused, reset, closed; BusyLoadingError: LOADING after a restart
        redis.TimeoutError,
        ReadOnlyError,  # a failover made the server we reach a replica
        TryAgainError,
        ClusterDownError,
    )
    settle_writers = 2
    """A group's script call is mostly round trip: while one is on its way, the next group
    of finished tasks is written on another connection."""
    maintenance_batch = 100
    """A batch is one script, which no other client of the server can interleave with: ~2 ms
    (expiry, purge, promotion: 10-20 µs a task on a busy two-core machine)."""

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        pool: redis.ConnectionPool | None = None,
        prefix: str = DEFAULT_PREFIX,
        url: str | None = None,
    ) -> None:
        """
        :param client: the client to use; default one built from `pool`, else localhost:6379.
        :param pool: a connection pool to build the client from.
        :param prefix: the namespace every key starts with.
        :param url: the URL the client was opened from, kept redacted as `self.url`.
        """
        if client is None:
            client = redis.Redis(connection_pool=pool) if pool else redis.Redis(**client_options())
        options = self._connection_options(client)
        if options.get("decode_responses"):
            raise ConfigurationError("RedisStorage needs a client with decode_responses=False")
        if not prefix:
            raise ConfigurationError("the Redis key prefix must not be empty")
        self.client = client
        self.prefix = prefix
        self.url = redact(url) if url else describe(options, prefix)
        self._ids = f"{prefix}:ids"
        self._queues = f"{prefix}:queues"
        self._periodic = f"{prefix}:periodic"
        timeout = options.get("socket_timeout")
        self._block_max = float("inf") if timeout is None else max(timeout - BLOCK_MARGIN_S, 0.0)
        self._scripts = load_scripts(client)
        self._local = threading.local()
        self._held: weakref.WeakSet[Held] = weakref.WeakSet()

    @classmethod
    def from_url(cls, url: str) -> RedisStorage:
        """redis://[[user]:password@]host[:port][/db][?options] or rediss:// for TLS.

        Options are redis-py's (socket_timeout, ssl_cert_reqs, ...) plus `prefix`, the key
        namespace (default "scoter"). Unless given, a call's reply is awaited at most
        CALL_TIMEOUT_S and a connection CONNECT_TIMEOUT_S (redis-py before 8 waits forever).
        """
        parts = urllib.parse.urlsplit(quote_userinfo(url))
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        prefix = dict(query).get("prefix", DEFAULT_PREFIX)
        rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "prefix"])
        try:
            client = redis.Redis.from_url(
                urllib.parse.urlunsplit(parts._replace(query=rest)), **client_options()
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"bad Redis URL {redact(url)!r}: {exc}") from exc
        return cls(client, prefix=prefix, url=url)

    def check(self, *, create: bool = True) -> None:
        """PING the server (Redis has no schema to create)."""
        try:
            self.client.ping()
        except Exception as exc:
            refused = self.misconfigured(exc)
            if refused is not None:
                raise refused from exc
            if isinstance(exc, self.transient_errors):
                raise redis.ConnectionError(f"cannot reach {self.url}: {one_line(exc)}") from exc
            raise

    def misconfigured(self, exc: BaseException) -> ConfigurationError | None:
        """A refused user name or password, missing rights, or a db number the server does
        not have (`databases` in redis.conf, 16 by default)."""
        refused = isinstance(exc, REFUSED)
        if refused or (isinstance(exc, redis.ResponseError) and "DB index" in str(exc)):
            return ConfigurationError(
                f"Redis at {self.url} refuses this client: {one_line(exc)}; check the user, "
                "password and db number of the URL"
            )
        return None

    def _connection_options(self, client: Any) -> dict[str, Any]:
        """The options `client` opens its connections with."""
        if not hasattr(client, "connection_pool"):  # a RedisCluster (see redis_cluster.py)
            raise ConfigurationError(
                f"RedisStorage needs a redis.Redis client, not {type(client).__name__}: for a "
                "Redis Cluster use RedisClusterStorage or a redis+cluster://host:port URL"
            )
        return cast(dict[str, Any], client.connection_pool.connection_kwargs)

    def close(self) -> None:
        for held in list(self._held):
            held.release()
        self._local = threading.local()
        self.client.close()

    # -- keys and calls --------------------------------------------------------------------

    def _base(self, queue: str) -> str:
        """The start of every key of `queue`: its hash tag keeps them in one Cluster slot."""
        return f"{self.prefix}:{{{queue}}}:"

    def _bases(self, queues: Sequence[str]) -> list[str]:
        return [self._base(q) for q in dict.fromkeys(queues)]

    def _token_base(self, token: str) -> str | None:
        return self._base(token[TOKEN_HEX:]) if len(token) >= TOKEN_HEX else None

    def _call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script by SHA on this thread's own connection.

        A third of the client-side cost of redis-py's `Script` call, which takes a connection
        from the pool and checks it for every command. A connection that fails is dropped; a
        call that failed to connect or found its connection closed is made once more on a new
        one (a restart leaves every pooled connection dead).
        """
        command = ("EVALSHA", self._scripts[script].sha, len(keys), *keys, self.prefix, *args)
        try:
            return self._send(script, command)
        except redis.ConnectionError:
            return self._send(script, command)

    def _send(self, script: str, command: tuple[Any, ...]) -> Any:
        return self._exchange(script, command)[0]

    def _exchange(
        self, script: str, command: tuple[Any, ...], before: tuple[Any, ...] | None = None
    ) -> tuple[Any, redis.ResponseError | None]:
        """Send `command`, after `before` if given, in one write: the reply of `command`, and
        the error `before` was refused with (None when it was not)."""
        held = self._connection()
        conn = held.conn
        try:
            held.send(*(before, command) if before else (command,))
            refused = error_of(conn.read_response) if before else None
            return conn.read_response(), refused
        except NoScriptError:  # the server restarted or flushed its scripts: load it again
            self.client.script_load(self._scripts[script].script)
            held.send(command)
            return conn.read_response(), None
        except (MovedError, ClusterCrossSlotError) as exc:  # keys the node does not serve
            raise ConfigurationError(f"{self.url} is a Redis Cluster node ({exc}): use a "
                                     "redis+cluster://host:port URL") from exc  # fmt: skip
        except redis.ResponseError:
            raise
        except BaseException:  # the reply may still come: never reuse this connection
            conn.disconnect()
            held.release()
            self._local.held = None
            raise

    def _connection(self) -> Held:
        held: Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():  # not one a fork inherited
            held = self._local.held = Held(self.client.connection_pool)
            self._held.add(held)
        return held

    def _fenced(self, script: str, token: str, *args: Any) -> bool:
        base = self._token_base(token)
        return base is not None and self._call(script, [base], [token, *args]) == 1

    # -- producers and consumers -----------------------------------------------------------

    def not_stored(self, exc: Exception) -> bool:
        """A connection that could not be opened sent nothing."""
        return isinstance(exc, redis.ConnectionError) and "connecting to" in str(exc)

    def enqueue(self, tasks: Sequence[NewTask], *, restart_finished: bool = True) -> int:
        if not tasks:
            return 0
        now = time.time()
        args: list[Any] = [int(restart_finished)]
        for t in tasks:
            eta = "" if t.eta is None else us(t.eta - now)
            args += (t.id, t.name, t.queue, t.payload, t.priority, eta, t.max_crashes)
        return int(self._call("enqueue", [self._ids, self._queues], args))

    def enqueue_slot(
        self, schedule: str, last: int | None, slot: int, tasks: Sequence[NewTask]
    ) -> bool:
        now = time.time()
        args: list[Any] = [0, schedule, "" if last is None else str(last), str(slot)]
        for t in tasks:
            eta = "" if t.eta is None else us(t.eta - now)
            args += (t.id, t.name, t.queue, t.payload, t.priority, eta, t.max_crashes)
        keys = [self._periodic, self._ids, self._queues]
        return int(self._call("enqueue_slot", keys, args)) >= 0

    def last_slots(self, schedules: Sequence[str]) -> dict[str, int]:
        if not schedules:
            return {}
        stored = cast(list[bytes | None], self.client.hmget(self._periodic, list(schedules)))
        return {s: int(v) for s, v in zip(schedules, stored, strict=True) if v is not None}

    def claim(self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str) -> list[Lease]:
        if n <= 0 or not queues:
            return []
        args = [n, us(lease_s), consumer_id, *new_tokens(n)]
        return self._leases(self._call("claim", self._bases(queues), args))

    def ack_many_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """One script: every ack, then the claim, in one round trip."""
        if with_flows(acks):
            return self._ack_flows_and_claim(acks, queues, n, lease_s, consumer_id)
        acked = [False] * len(acks)
        keys: list[str] = []
        args: list[Any] = []
        sent: list[int] = []  # the index in `acks` of each ack sent (a token names its queue)
        for i, a in enumerate(acks):
            base = self._token_base(a.token)
            if base is not None:
                keys.append(base)
                args += (a.token, *result_args(a.result, a.result_ttl))
                sent.append(i)
        bases = self._bases(queues) if n > 0 else []
        n = n if bases else 0
        if not keys and not n:
            return acked, []
        args = [len(keys), n, us(lease_s), consumer_id, *args, *new_tokens(n)]
        reply = self._call("ack_many_and_claim", keys + bases, args)
        for i, flag in zip(sent, reply, strict=False):
            acked[i] = flag == 1
        return acked, self._leases(reply[len(keys) :])

    def heartbeat(self, tokens: Iterable[str], lease_s: float) -> set[str]:
        lost: set[str] = set()
        groups: dict[str, list[str]] = {}
        for token in set(tokens):
            base = self._token_base(token)
            if base is None:
                lost.add(token)
            else:
                groups.setdefault(base, []).append(token)
        if groups:
            args: list[Any] = [us(lease_s)]
            for group in groups.values():
                args += (len(group), *group)
            lost.update(t.decode() for t in self._call("heartbeat", list(groups), args))
        return lost

    def ack(self, token: str, result: bytes | None, result_ttl: float | None) -> bool:
        return self._fenced("ack", token, *result_args(result, result_ttl))

    def retry(self, token: str, eta: float, error: str) -> bool:
        return self._fenced("retry", token, us(eta - time.time()), error, last_line(error) or "")

    def release(self, token: str, reason: str, delay: float = 0.0) -> bool:
        return self._fenced("release", token, reason, us(max(delay, 0.0)))

    def dead(self, token: str, reason: str, error: str | None) -> bool:
        has_error = "" if error is None else "1"
        return self._fenced("dead", token, reason, has_error, error or "", last_line(error) or "")

    def checkpoint(self, token: str, state: bytes) -> bool:
        return self._fenced("checkpoint", token, state)

    def isolate(self, token: str) -> bool:
        return self._fenced("isolate", token)

    def crash(self, token: str, detail: str) -> Rescued | None:
        base = self._token_base(token)
        if base is None:
            return None
        rescued = rescued_of(reported(self._call("crash", [base], [token, detail])))
        return rescued[0] if rescued else None

    def hand_back(self, consumer_id: str, queues: Sequence[str], keep: Collection[str]) -> int:
        handed = 0
        for base in self._bases(queues):
            reply = self._call("hand_back", [base], [consumer_id, UNSTARTED, *keep])
            handed += int(reported(reply)[0])
        return handed

    def progress(self, token: str, done: int, total: int) -> bool:
        return self._fenced("progress", token, done, total)

    def rescue(self, now: float) -> list[Rescued]:
        batch = min(self.maintenance_batch, RESCUE_BATCH)
        return self.in_list_batches(functools.partial(self._rescue, now), batch)

    def _rescue(self, now: float, limit: int) -> list[Rescued]:
        args = [us(now - time.time()), EXPIRED, SPARED, limit]
        return rescued_of(reported(self._call("rescue", [self._queues], args)))

    def promote(self, now: float) -> int:
        return self._due_batches("promote", [self._queues], now)

    def _due_batches(self, script: str, keys: list[str], now: float) -> int:
        """A script of `batch_of` (lib.lua: ARGV now, limit; returns how many it took and its
        problems), in batches."""

        def batch(limit: int) -> int:
            taken, problems = self._call(script, keys, [us(now - time.time()), limit])
            report(problems)
            return int(taken)

        return self.in_batches(batch)

    def wait(self, queues: Sequence[str], timeout: float) -> None:
        """Block on the queues' wake-up lists (BLPOP) until a token or `timeout`."""
        timeout = min(timeout, self._block_max)
        if queues and timeout >= BLOCK_MIN_S:
            keys = wake_keys(self._bases(queues))
            self.client.blpop(keys, timeout)  # type: ignore[arg-type, unused-ignore]  # float s

    def wait_and_claim(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str, timeout: float
    ) -> list[Lease]:
        """The BLPOP of `wait` and the claim script, pipelined on one connection: the server
        runs the claim the moment the wait ends, with no round trip between them. A refused
        wait is raised, unless the claim took tasks: those are never dropped."""
        timeout = min(timeout, self._block_max)
        if not queues or n <= 0 or timeout < BLOCK_MIN_S:
            return super().wait_and_claim(queues, n, lease_s, consumer_id, timeout)
        bases = self._bases(queues)
        block = ("BLPOP", *wake_keys(bases), f"{timeout:.3f}")
        args = [n, us(lease_s), consumer_id, *new_tokens(n)]
        claim = ("EVALSHA", self._scripts["claim"].sha, len(bases), *bases, self.prefix, *args)
        reply, refused = self._exchange("claim", claim, before=block)
        leases = self._leases(reply)
        if refused and not leases:  # a wake-up key holding something else: never a busy loop
            raise refused
        return leases

    def _token_prefixes(self, n: int) -> list[str]:
        return new_tokens(n)

    def _leases(self, reply: list[Any]) -> list[Lease]:
        """The leases of a claim's reply (the expiry, the problems, then LEASE_FIELDS per
        lease). A lease whose text is not UTF-8 is quarantined instead (DESIGN G11)."""
        expires = int(reply[0]) / US
        report(reply[1])
        r = reply[2:]
        leases: list[Lease] = []
        for i in range(0, len(r), LEASE_FIELDS):
            try:
                leases.append(lease_of(r[i : i + LEASE_FIELDS], expires))
            except UnicodeDecodeError:
                self._quarantine(r[i : i + LEASE_FIELDS])
        return leases

    def _quarantine(self, values: list[Any]) -> None:
        fields = Fields(dict(zip(LEASE_NAMES, values, strict=True)), encoded=True)
        for name in ("id", "name", "queue"):
            fields.text(name)
        error = corrupt_error(fields.problems)
        log.error("task %s: %s", fields.text("id"), error)
        self.dead(values[0].decode(), CORRUPT, error)

    # -- results and inspection ------------------------------------------------------------

    def get(self, task_id: str) -> TaskInfo | None:
        fields = self._call("get", [self._ids], [task_id])
        if not fields:  # no such task, or its record is gone
            return None
        if len(fields) == 1:  # its key is not a hash
            return task_info(task_id, [], f"the task's key is not a hash: {fields[0].decode()}")
        return task_info(task_id, fields)

    def counts(self) -> dict[tuple[str, State], int]:
        r = self._call("counts", [self._queues], [])
        return {
            (r[i].decode("utf-8", "replace"), State(r[i + 1].decode())): int(r[i + 2])
            for i in range(0, len(r), 3)
        }

    def list_tasks(
        self, state: State, queue: str | None = None, limit: int = 100
    ) -> list[TaskInfo]:
        if limit <= 0:
            return []
        queues = [] if queue is None else [queue]
        r = self._call("list", [self._queues], [state.value, limit, *queues])
        return [task_info(r[i].decode("utf-8", "replace"), r[i + 1]) for i in range(0, len(r), 2)]

    def requeue_dead(self, ids: Sequence[str] | None = None) -> int:
        return self._each_in("requeue_dead", [], ids)

    def purge(self, state: State, ids: Sequence[str] | None = None) -> int:
        return self._each_in("purge", [state.value], ids)

    def _each_in(self, script: str, args: list[Any], ids: Sequence[str] | None) -> int:
        """A script of `each_in` (lib.lua) in batches: of `ids`, or of any tasks when None."""
        keys = [self._ids, self._queues]
        if ids is None:
            return self.in_batches(lambda limit: int(self._call(script, keys, [*args, limit])))
        return self.in_id_batches(
            ids, lambda chunk: int(self._call(script, keys, [*args, 0, *chunk]))
        )

    def expire_results(self, now: float) -> int:
        return self._due_batches("expire_results", [self._ids, self._queues], now)

    def find_tasks(self, name: str, state: State | None = None, limit: int = 100) -> list[TaskInfo]:
        """Reads each queue's state sets a page (FIND_PAGE tasks) a script. Queued tasks of
        several priorities: the newest of the lowest priorities come first, before `limit`
        cuts."""
        found: list[tuple[int, TaskInfo]] = []
        queues = cast("set[bytes]", self.client.smembers(self._queues))
        for queue in sorted(q.decode("utf-8", "replace") for q in queues):
            for each in list(State) if state is None else [state]:
                found += self._find_in(queue, each, name, limit)
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [info for _, info in found[: max(limit, 0)]]

    def _find_in(
        self, queue: str, state: State, name: str, limit: int
    ) -> list[tuple[int, TaskInfo]]:
        """Up to `limit` tasks of one queue and state whose name contains `name`, with their
        seq (see find.lua)."""
        key = self._base(queue) + FIND_SETS[state]
        found: list[tuple[int, TaskInfo]] = []
        start = 0
        while start >= 0 and len(found) < limit:
            r = self._call("find", [key], [queue, state.value, name, start, FIND_PAGE])
            start = int(r[0])
            found += [
                (int(r[i]), task_info(r[i + 1].decode("utf-8", "replace"), r[i + 2]))
                for i in range(1, len(r), 3)
            ]
        return found[:limit]
