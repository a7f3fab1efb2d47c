"""The Redis Cluster storage's revocations and earliest eta (part of `RedisClusterStorage`).

No script crosses slots: revoke.lua and restore.lua run on each queue's slot for the ids the
directory places there (ONE_QUEUE), and the records of tasks revoked while running go to
P:revocations, a slot of its own, in a call of their own. A task that ends between the two
leaves a record of an ended task, which `revocations` drops. The earliest eta is each queue's,
measured on the clock of the node serving it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from scoter.states import State
from scoter.storage._redis_routing import Call
from scoter.storage._redis_time import US, names_of, revocations_key
from scoter.storage.base import Revocations

LIVE = {b"scheduled", b"queued", b"running"}


class _Cluster(Protocol):
    """What these methods use of RedisClusterStorage."""

    prefix: str

    def _base(self, queue: str) -> str: ...

    def _call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any: ...

    def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Call: ...

    def _run(self, calls: Sequence[Call]) -> list[Any]: ...

    def _all_queues(self) -> list[str]: ...

    def _queues_of(self, ids: list[str]) -> dict[str, set[str]]: ...

    def _directory(self, ids: Sequence[str]) -> dict[str, str | None]: ...


class ClusterTime:
    """Revocation and the earliest eta, queue by queue."""

    def revoke(self: _Cluster, ids: Sequence[str]) -> dict[str, State]:
        found: dict[str, State] = {}
        records: list[str] = []
        for queue, placed in self._queues_of(list(dict.fromkeys(ids))).items():
            r = self._call("revoke", [self._base(queue)], sorted(placed))
            for i in range(0, len(r), 3):
                task_id, state = r[i].decode(), State(r[i + 1].decode())
                found[task_id] = state
                if state is State.RUNNING:
                    records += (f"id:{task_id}", r[i + 2].decode())
        if records:
            key = revocations_key(self.prefix)
            self._run([Call(key, ("HSET", key, *records))])
        return found

    def restore(self: _Cluster, ids: Sequence[str]) -> int:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return 0
        key = revocations_key(self.prefix)
        deleted = self._run([Call(key, ("HDEL", key, f"id:{i}")) for i in unique])
        restored = {i for i, n in zip(unique, deleted, strict=True) if n == 1}
        for queue, placed in self._queues_of(unique).items():
            requeued = self._call("restore", [self._base(queue)], sorted(placed))
            restored.update(i.decode() for i in requeued)
        return len(restored)

    def forget_revocation(self: _Cluster, task_id: str) -> bool:
        key = revocations_key(self.prefix)
        return int(self._run([Call(key, ("HDEL", key, f"id:{task_id}"))])[0]) == 1

    def revoke_task(self: _Cluster, name: str, until: float | None, once: bool) -> None:
        key = revocations_key(self.prefix)
        value = f"{'' if until is None else repr(float(until))}|{int(once)}"
        self._run([Call(key, ("HSET", key, f"task:{name}", value))])

    def restore_task(self: _Cluster, name: str) -> bool:
        key = revocations_key(self.prefix)
        return int(self._run([Call(key, ("HDEL", key, f"task:{name}"))])[0]) == 1

    def revocations(self: _Cluster) -> Revocations:
        key = revocations_key(self.prefix)
        stored = self._run([Call(key, ("HGETALL", key))])[0]
        pairs = list(stored.items()) if isinstance(stored, dict) else list(
            zip(stored[::2], stored[1::2], strict=True)
        )  # fmt: skip
        names = [(f[5:], v) for f, v in pairs if f.startswith(b"task:")]
        records = {f[3:].decode("utf-8", "replace"): v for f, v in pairs if f.startswith(b"id:")}
        return Revocations(names_of(names), frozenset(_live(self, key, records)))

    def next_eta(self: _Cluster) -> float | None:
        calls = [self._eval("next_eta", [self._base(q)], []) for q in self._all_queues()]
        ahead = [int(r) for r in self._run(calls) if r is not None]
        return None if not ahead else time.time() + min(ahead) / US


def _live(storage: _Cluster, key: str, records: dict[str, bytes]) -> set[str]:
    """The ids of `records` whose task is live and the one revoked (its created_at); the
    records of the others are deleted."""
    if not records:
        return set()
    places = storage._directory(list(records))
    placed = [(i, q) for i, q in places.items() if q is not None]
    fields = storage._run([
        Call(storage._base(q), ("HMGET", f"{storage._base(q)}t:{i}", "state", "created_at"))
        for i, q in placed
    ])  # fmt: skip
    live = {
        i for (i, _), (state, created) in zip(placed, fields, strict=True)
        if state in LIVE and (created or b"") == records[i]
    }  # fmt: skip
    stale = [f"id:{i}" for i in records if i not in live]
    if stale:
        storage._run([Call(key, ("HDEL", key, *stale))])
    return live
