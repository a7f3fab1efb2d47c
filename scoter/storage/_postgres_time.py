"""The PostgreSQL storage's revocations and earliest eta (part of `PostgresStorage`; the
queries are in postgres_time.sql, the table in migration 0005)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from scoter.states import State
from scoter.storage.base import Revocation, Revocations


class _Postgres(Protocol):
    """What these methods use of PostgresStorage."""

    _channel: str

    def _rows(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]: ...

    def _rowcount(self, query: str, **params: Any) -> int: ...


class PostgresTime:
    """Revocation and the earliest eta, each one statement."""

    def revoke(self: _Postgres, ids: Sequence[str]) -> dict[str, State]:
        rows = self._rows("revoke", {"ids": list(dict.fromkeys(ids))})
        return {task_id: State(state) for task_id, state in rows}

    def restore(self: _Postgres, ids: Sequence[str]) -> int:
        params = {"ids": list(dict.fromkeys(ids)), "channel": self._channel}
        return int(self._rows("restore", params)[0][0])

    def forget_revocation(self: _Postgres, task_id: str) -> bool:
        return self._rowcount("forget_revocation", id=task_id) == 1

    def revoke_task(self: _Postgres, name: str, until: float | None, once: bool) -> None:
        self._rowcount("revoke_task", name=name, until=until, once=once)

    def restore_task(self: _Postgres, name: str) -> bool:
        return self._rowcount("restore_task", name=name) == 1

    def take_revocation(self: _Postgres, name: str) -> bool:
        return self._rowcount("take_revocation", name=name) == 1

    def revocations(self: _Postgres) -> Revocations:
        names: dict[str, Revocation] = {}
        ids: set[str] = set()
        for kind, key, until, once in self._rows("revocations", {}):
            if kind == "id":
                ids.add(key)
            else:
                names[key] = Revocation(until, bool(once))
        return Revocations(names, frozenset(ids))

    def next_eta(self: _Postgres) -> float | None:
        rows = self._rows("next_eta", {})
        return None if not rows else time.time() + float(rows[0][0])
