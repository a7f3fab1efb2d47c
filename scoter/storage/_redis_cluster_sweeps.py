"""What `RedisClusterStorage` does over every queue, one queue's slot at a time, and merges:
the maintenance steps, inspection, the id directory's reads and cleaning, periodic slots, and
the calls they share. See redis_cluster.py for the design.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis

from scoter.states import State
from scoter.storage._redis_replies import report, reported, rescued_of, task_info, us
from scoter.storage._redis_routing import Call, Router
from scoter.storage.base import EXPIRED, SPARED, NewTask, Rescued, TaskInfo
from scoter.storage.redis import RESCUE_BATCH, RedisStorage

log = logging.getLogger("scoter.storage")

DIRECTORY_BUCKETS = 256
"""Hashes the id directory is split into, on slots of their own: a batch of ids touches few."""
FORGOTTEN_BATCH = 500
"""Ids one call takes off a queue's list of deleted tasks, for the directory."""
INDEXES = (
    ("scheduled", State.SCHEDULED), ("ready", State.QUEUED), ("leases", State.RUNNING),
    ("done", State.DONE), ("dead", State.DEAD),
)  # fmt: skip
PENDING = "pending "
"""The field of P:periodic holding a schedule's slot tasks not yet known enqueued."""


class ClusterSweeps(RedisStorage):
    """The cross-queue parts of `RedisClusterStorage` (which sets `router` and `_known`)."""

    router: Router
    _known: set[str]

    # -- calls -----------------------------------------------------------------------------

    def _bucket(self, task_id: str) -> str:
        """The directory bucket of `task_id`: the hash that says its queue."""
        return f"{self.prefix}:ids:{zlib.crc32(task_id.encode()) % DIRECTORY_BUCKETS}"

    def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Call:
        """An EVALSHA for the slot of `keys`. A script given a key of a queue other than its
        base (find.lua: a state's set) is given the base too, after its own keys: the base
        never exists, so a slot being migrated redirects the call (ASK, or TRYAGAIN when its
        other keys are still there) before it runs on half the queue."""
        first = keys[0]
        if "{" in first and not first.endswith("}:"):
            keys = [*keys, first[: first.index("}", first.index("{")) + 2]]
        sha = self._scripts[script].sha
        return Call(first, ("EVALSHA", sha, len(keys), *keys, self.prefix, *args), script)

    def _call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script on the primary of its keys' slot (one slot: a queue's, or a bucket's)."""
        return self.router.call(self._eval(script, keys, args))

    def _run(self, calls: Sequence[Call]) -> list[Any]:
        """Every call's reply, pipelined over the nodes; an error reply is raised."""
        replies = self.router.run(calls)
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies

    def _remember(self, queues: Iterable[str]) -> None:
        """Put queues this storage has not seen yet in P:queues, before their first task."""
        new = set(queues) - self._known
        if new:
            self.router.call(Call(self._queues, ("SADD", self._queues, *sorted(new))))
            self._known.update(new)

    def _all_queues(self) -> list[str]:
        """Every queue: those in P:queues, and those this storage used (put back in the set
        if it lost them)."""
        stored = self.router.call(Call(self._queues, ("SMEMBERS", self._queues)))
        queues = {q.decode("utf-8", "replace") for q in stored}
        lost = self._known - queues
        if lost:
            self.router.call(Call(self._queues, ("SADD", self._queues, *sorted(lost))))
        return sorted(queues | self._known)

    # -- maintenance -----------------------------------------------------------------------

    def _across(
        self, step: Callable[[str, int], int], size: int | None = None, forget: bool = False
    ) -> int:
        """`in_batches` over every queue: a batch takes up to its size from the queues in turn,
        `step(queue, limit)` on each (one script, atomic: a batch is atomic per queue), and the
        next batch goes on where it stopped. With `forget`, the ids of each queue's deleted
        tasks are then taken out of the directory."""
        queues = self._all_queues()
        at = 0

        def batch(limit: int) -> int:
            nonlocal at
            taken = 0
            while at < len(queues) and taken < limit:
                got = step(queues[at], limit - taken)
                if taken + got < limit:  # that queue has no more
                    if forget:
                        self._forget_ids(queues[at])
                    at += 1
                taken += got
            return taken

        return self.in_batches(batch, size)

    def rescue(self, now: float) -> list[Rescued]:
        rescued: list[Rescued] = []

        def step(queue: str, limit: int) -> int:
            args = [us(now - time.time()), EXPIRED, SPARED, limit]
            got = rescued_of(reported(self._call("rescue", [self._base(queue)], args)))
            rescued.extend(got)
            return len(got)

        self._across(step, min(self.maintenance_batch, RESCUE_BATCH))
        return rescued

    def promote(self, now: float) -> int:
        return self._across(self._due("promote", now))

    def expire_results(self, now: float) -> int:
        return self._across(self._due("expire_results", now), forget=True)

    def _due(self, script: str, now: float) -> Callable[[str, int], int]:
        """One queue's batch of a script of `batch_of` (lib.lua: ARGV now, limit; returns how
        many it took and its problems)."""

        def step(queue: str, limit: int) -> int:
            args = [us(now - time.time()), limit]
            taken, problems = self._call(script, [self._base(queue)], args)
            report(problems)
            return int(taken)

        return step

    def _each_in(self, script: str, args: list[Any], ids: Sequence[str] | None) -> int:
        """A script of `each_in` (lib.lua) on each queue: in batches of any of its tasks, or in
        chunks of `ids`, each chunk's ids on the queue the directory places them in (an id it
        has no entry for: on every queue)."""
        if ids is None:

            def any_in(queue: str, limit: int) -> int:
                return int(self._call(script, [self._base(queue)], [*args, limit]))

            return self._across(any_in, forget=True)
        unique = list(dict.fromkeys(ids))
        where = self._queues_of(unique)

        def chunk_in(chunk: list[str]) -> int:
            taken = 0
            for queue, placed in where.items():
                mine = [i for i in chunk if i in placed]
                if mine:
                    taken += int(self._call(script, [self._base(queue)], [*args, 0, *mine]))
            return taken

        total = self.in_id_batches(unique, chunk_in)
        for queue in where:
            self._forget_ids(queue)
        return total

    def _queues_of(self, ids: list[str]) -> dict[str, set[str]]:
        """The ids by the queue the directory places them in; ids it does not place go to
        every queue."""
        where: dict[str, set[str]] = {}
        unplaced: set[str] = set()
        for task_id, queue in self._directory(ids).items():
            if queue is None:
                unplaced.add(task_id)
            else:
                where.setdefault(queue, set()).add(task_id)
        if unplaced:
            for queue in self._all_queues():
                where[queue] = where.get(queue, set()) | unplaced
        return where

    def _forget_ids(self, queue: str) -> None:
        """Take the ids of the queue's deleted tasks out of the directory (forgotten.lua)."""
        base = self._base(queue)
        while True:
            reply = self._call("forgotten", [base], [FORGOTTEN_BATCH])
            ids = [i.decode() for i in reply[:-1]]
            by_bucket: dict[str, list[str]] = {}
            for task_id in ids:
                by_bucket.setdefault(self._bucket(task_id), []).extend((task_id, queue))
            self._run([self._eval("ids_forget", [b], pairs) for b, pairs in by_bucket.items()])
            if int(reply[-1]) < FORGOTTEN_BATCH:
                return

    # -- inspection ------------------------------------------------------------------------

    def _directory(self, ids: Sequence[str]) -> dict[str, str | None]:
        """The queue the directory places each id in (None: no entry)."""
        calls = [Call(self._bucket(i), ("HGET", self._bucket(i), i)) for i in ids]
        replies = self._run(calls)
        return {i: None if q is None else q.decode() for i, q in zip(ids, replies, strict=True)}

    def get(self, task_id: str) -> TaskInfo | None:
        """The directory says the task's queue; an id it has no entry for is looked for in
        every queue (an entry can be missing: see docs/redis.md), and entered when found."""
        queue = self._directory([task_id])[task_id]
        if queue is not None:
            return self._read_task(queue, task_id)
        for queue in self._all_queues():
            info = self._read_task(queue, task_id)
            if info is not None:
                self._run([self._eval("ids_take", [self._bucket(task_id)], [task_id, queue, ""])])
                return info
        return None

    def _read_task(self, queue: str, task_id: str) -> TaskInfo | None:
        key = f"{self._base(queue)}t:{task_id}"
        fields = self.router.run([Call(key, ("HGETALL", key))])[0]
        if isinstance(fields, redis.ResponseError):  # its key is not a hash
            return task_info(task_id, [], f"the task's key is not a hash: {fields}")
        return task_info(task_id, flat(fields)) if fields else None

    def counts(self) -> dict[tuple[str, State], int]:
        queues = self._all_queues()
        calls = [
            Call(self._base(q), ("ZCARD", self._base(q) + suffix))
            for q in queues for suffix, _ in INDEXES
        ]  # fmt: skip
        replies = iter(self.router.run(calls))
        counts: dict[tuple[str, State], int] = {}
        for queue in queues:
            for (_, state), n in zip(INDEXES, replies, strict=False):
                if isinstance(n, int) and n > 0:  # a key of the wrong type counts none
                    counts[queue, state] = n
        return counts

    def list_tasks(
        self, state: State, queue: str | None = None, limit: int = 100
    ) -> list[TaskInfo]:
        if limit <= 0:
            return []
        queues = self._all_queues() if queue is None else [queue]
        args = [state.value, limit]
        calls = [self._eval("list", [self._base(q)], [*args, q]) for q in queues]
        found: list[tuple[int, str, list[bytes]]] = []
        for r in self._run(calls):
            for i in range(0, len(r), 2):
                found.append((_seq(r[i + 1]), r[i].decode("utf-8", "replace"), r[i + 1]))
        found.sort(key=lambda f: (f[0], f[1]))
        return [task_info(task_id, fields) for _, task_id, fields in found[:limit]]

    # -- periodic slots --------------------------------------------------------------------

    def enqueue_slot(
        self, schedule: str, last: int | None, slot: int, tasks: Sequence[NewTask]
    ) -> bool:
        """The compare-and-set keeps the slot's tasks as pending in the same step; they are
        enqueued next, and the pending entry dropped (a caller that dies between leaves it to
        the next `last_slots`)."""
        pending = _encode(slot, tasks) if tasks else ""
        args = [schedule, "" if last is None else str(last), str(slot), pending]
        if not self._call("slot_advance", [self._periodic], args):
            return False
        if tasks:
            self._enqueue_pending(schedule, pending)
        return True

    def last_slots(self, schedules: Sequence[str]) -> dict[str, int]:
        """Also enqueues the pending tasks of a slot whose enqueuer died (see enqueue_slot)."""
        if not schedules:
            return {}
        fields = [*schedules, *(PENDING + s for s in schedules)]
        stored = self.router.call(Call(self._periodic, ("HMGET", self._periodic, *fields)))
        for schedule, pending in zip(schedules, stored[len(schedules) :], strict=True):
            if pending is not None:
                log.warning("periodic %s: enqueueing the tasks of a slot left pending", schedule)
                self._enqueue_pending(schedule, pending.decode())
        lasts = zip(schedules, stored[: len(schedules)], strict=True)
        return {s: int(v) for s, v in lasts if v is not None}

    def _enqueue_pending(self, schedule: str, pending: str) -> None:
        self.enqueue(_decode(pending), restart_finished=False)
        self._call("slot_settle", [self._periodic], [schedule, pending])


def flat(reply: Any) -> list[Any]:
    """A reply of pairs (HGETALL, ZRANGE WITHSCORES) as one flat list, whether the connection
    speaks RESP2 (already flat) or RESP3 (a map, or a list of pairs)."""
    if isinstance(reply, dict):
        return [v for pair in reply.items() for v in pair]
    if reply and isinstance(reply[0], list):
        return [v for pair in reply for v in pair]
    return list(reply)


def _seq(pairs: list[bytes]) -> int:
    """The seq field of a task hash's field, value pairs (0 when missing or unreadable)."""
    for i in range(0, len(pairs) - 1, 2):
        if pairs[i] == b"seq":
            try:
                return int(pairs[i + 1])
            except ValueError:
                return 0
    return 0


def _encode(slot: int, tasks: Sequence[NewTask]) -> str:
    rows = [
        [t.id, t.name, t.queue, base64.b64encode(t.payload).decode(), t.priority, t.eta,
         t.max_crashes]
        for t in tasks
    ]  # fmt: skip
    return json.dumps([slot, rows], separators=(",", ":"))


def _decode(pending: str) -> list[NewTask]:
    _, rows = json.loads(pending)
    return [NewTask(r[0], r[1], r[2], base64.b64decode(r[3]), r[4], r[5], r[6]) for r in rows]
