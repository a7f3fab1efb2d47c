"""The Redis storage's revocations and earliest eta (part of `RedisStorage`).

Revocations live in one hash, P:revocations: field `task:<name>` holds `<until>|<once>` (until
in seconds since the epoch, '' for none; once '1' or '0'), field `id:<id>` the created_at of a
task revoked while it ran (see revoke.lua).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import redis

from scoter.states import State
from scoter.storage._records import printable
from scoter.storage.base import Revocation, Revocations

log = logging.getLogger("scoter.storage")

US = 1_000_000


class _Redis(Protocol):
    """What these methods use of RedisStorage."""

    prefix: str
    client: redis.Redis
    _ids: str

    def _call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any: ...


def _key(storage: _Redis) -> str:
    return f"{storage.prefix}:revocations"


class RedisTime:
    """Revocation and the earliest eta, each one script or one command."""

    def revoke(self: _Redis, ids: Sequence[str]) -> dict[str, State]:
        if not ids:
            return {}
        r = self._call("revoke", [self._ids, _key(self)], list(ids))
        return {r[i].decode(): State(r[i + 1].decode()) for i in range(0, len(r), 2)}

    def restore(self: _Redis, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        return int(self._call("restore", [self._ids, _key(self)], list(ids)))

    def forget_revocation(self: _Redis, task_id: str) -> bool:
        return int(self.client.hdel(_key(self), f"id:{task_id}")) == 1  # type: ignore[arg-type, unused-ignore]

    def revoke_task(self: _Redis, name: str, until: float | None, once: bool) -> None:
        value = f"{'' if until is None else repr(float(until))}|{int(once)}"
        self.client.hset(_key(self), f"task:{name}", value)

    def restore_task(self: _Redis, name: str) -> bool:
        return int(self.client.hdel(_key(self), f"task:{name}")) == 1  # type: ignore[arg-type, unused-ignore]

    def take_revocation(self: _Redis, name: str) -> bool:
        return int(self._call("take_revocation", [_key(self)], [name])) == 1

    def revocations(self: _Redis) -> Revocations:
        flat, ids = self._call("revocations", [self._ids, _key(self)], [])
        names: dict[str, Revocation] = {}
        for i in range(0, len(flat), 3):
            name = flat[i].decode("utf-8", "replace")
            try:
                until = float(flat[i + 1]) if flat[i + 1] else None
            except ValueError:  # one bad record is that record's problem
                log.error("revocation of %s ignored: until is %s, not a time",
                          printable(name), printable(repr(flat[i + 1])[:60]))  # fmt: skip
                continue
            names[name] = Revocation(until, flat[i + 2] == b"1")
        return Revocations(names, frozenset(i.decode("utf-8", "replace") for i in ids))

    def next_eta(self: _Redis) -> float | None:
        ahead = self._call("next_eta", [f"{self.prefix}:queues"], [])
        return None if ahead is None else time.time() + int(ahead) / US
