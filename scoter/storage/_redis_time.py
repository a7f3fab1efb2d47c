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


def revocations_key(prefix: str) -> str:
    """The hash of every revocation record."""
    return f"{prefix}:revocations"


class RedisTime:
    """Revocation and the earliest eta, each one script or one command."""

    def revoke(self: _Redis, ids: Sequence[str]) -> dict[str, State]:
        if not ids:
            return {}
        r = self._call("revoke", [self._ids, revocations_key(self.prefix)], list(ids))
        return {r[i].decode(): State(r[i + 1].decode()) for i in range(0, len(r), 3)}

    def restore(self: _Redis, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        return len(self._call("restore", [self._ids, revocations_key(self.prefix)], list(ids)))

    def forget_revocation(self: _Redis, task_id: str) -> bool:
        return int(self.client.hdel(revocations_key(self.prefix), f"id:{task_id}")) == 1  # type: ignore[arg-type, unused-ignore]

    def revoke_task(self: _Redis, name: str, until: float | None, once: bool) -> None:
        value = f"{'' if until is None else repr(float(until))}|{int(once)}"
        self.client.hset(revocations_key(self.prefix), f"task:{name}", value)

    def restore_task(self: _Redis, name: str) -> bool:
        return int(self.client.hdel(revocations_key(self.prefix), f"task:{name}")) == 1  # type: ignore[arg-type, unused-ignore]

    def take_revocation(self: _Redis, name: str) -> bool:
        return int(self._call("take_revocation", [revocations_key(self.prefix)], [name])) == 1

    def revocations(self: _Redis) -> Revocations:
        flat, ids = self._call("revocations", [self._ids, revocations_key(self.prefix)], [])
        names = names_of(list(zip(flat[::2], flat[1::2], strict=True)))
        return Revocations(names, frozenset(i.decode("utf-8", "replace") for i in ids))

    def next_eta(self: _Redis) -> float | None:
        ahead = self._call("next_eta", [f"{self.prefix}:queues"], [])
        return None if ahead is None else time.time() + int(ahead) / US


def names_of(records: list[tuple[bytes, bytes]]) -> dict[str, Revocation]:
    """The name revocations of (name, `<until>|<once>`) records; a record that cannot be read
    is left out, with a log line (one bad record is that record's problem)."""
    names: dict[str, Revocation] = {}
    for raw_name, value in records:
        name = raw_name.decode("utf-8", "replace")
        until, _, once = value.partition(b"|")
        try:
            names[name] = Revocation(float(until) if until else None, once == b"1")
        except ValueError:
            log.error("revocation of %s ignored: its record is %s, not <until>|<once>",
                      printable(name), printable(repr(value)[:60]))  # fmt: skip
    return names
