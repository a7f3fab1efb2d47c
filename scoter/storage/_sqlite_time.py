"""The SQLite storage's revocations and earliest eta (part of `SQLiteStorage`; the queries are
in sqlite_time.sql, the table in schema version 4)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Protocol

from scoter.states import State
from scoter.storage._records import printable
from scoter.storage.base import Revocation, Revocations

log = logging.getLogger("scoter.storage")


class _SQLite(Protocol):
    """What these methods use of SQLiteStorage."""

    def _write(
        self, query: str, params: dict[str, Any], *, lenient: bool = False
    ) -> tuple[list[Any], int]: ...

    def _read(self, query: str, params: dict[str, Any]) -> tuple[sqlite3.Cursor, list[Any]]: ...

    def _in_transaction(self, steps: Sequence[tuple[str, dict[str, Any]]]) -> list[list[Any]]: ...


class SQLiteTime:
    """Revocation and the earliest eta, each one statement or one write transaction."""

    def revoke(self: _SQLite, ids: Sequence[str]) -> dict[str, State]:
        params = {"ids": json.dumps(list(dict.fromkeys(ids))), "now": time.time()}
        found, *_ = self._in_transaction([
            ("revoke_find", params), ("revoke_waiting", params), ("revoke_running", params),
            ("forget_stale_revocations", params),
        ])  # fmt: skip
        return {task_id: State(state) for task_id, state in found}

    def restore(self: _SQLite, ids: Sequence[str]) -> int:
        params = {"ids": json.dumps(list(dict.fromkeys(ids))), "now": time.time()}
        requeued, forgotten = self._in_transaction(
            [("restore_revoked", params), ("forget_revocations", params)]
        )
        return len({row[0] for row in requeued} | {row[0] for row in forgotten})

    def forget_revocation(self: _SQLite, task_id: str) -> bool:
        return self._write("forget_revocation", {"id": task_id})[1] == 1

    def revoke_task(self: _SQLite, name: str, until: float | None, once: bool) -> None:
        self._write("revoke_task", {"name": name, "until": until, "once": int(once)})

    def restore_task(self: _SQLite, name: str) -> bool:
        return self._write("restore_task", {"name": name})[1] == 1

    def take_revocation(self: _SQLite, name: str) -> bool:
        return self._write("take_revocation", {"name": name})[1] == 1

    def revocations(self: _SQLite) -> Revocations:
        names: dict[str, Revocation] = {}
        ids: set[str] = set()
        for kind, key, until, once in self._read("revocations", {})[1]:
            if kind == "id":
                ids.add(key)
            elif until is None or isinstance(until, (int, float)):
                names[key] = Revocation(until, bool(once))
            else:  # one bad record is that record's problem: the others still hold
                log.error("revocation of %s ignored: until is %s, not a time",
                          printable(str(key)), printable(repr(until)[:60]))  # fmt: skip
        return Revocations(names, frozenset(ids))

    def next_eta(self: _SQLite) -> float | None:
        rows = self._read("next_eta", {})[1]
        eta = rows[0][0] if rows else None
        return float(eta) if isinstance(eta, (int, float)) else None
