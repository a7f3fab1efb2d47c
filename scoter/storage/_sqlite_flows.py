"""SQLite storage of pipelines and chords: the acks that hand a flow on, a step's death with its
error handler, and chord countdowns (the `scoter_chords` tables, sqlite_flows.sql `flows_schema`).

Each hand-off is written in the transaction of the ack or death it follows, so that a crash
between them cannot happen: both commit or neither does.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from scoter.storage._records import last_line
from scoter.storage._sqlite_rows import enqueue_rows
from scoter.storage.base import Ack, ChordInfo, Flow, Lease, NewTask


class SQLiteFlows:
    """The flow methods of `SQLiteStorage` (a mixin: it uses the storage's connections)."""

    if TYPE_CHECKING:

        def _transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _read(self, query: str, params: dict[str, Any]) -> tuple[sqlite3.Cursor, list[Any]]: ...

        def claim(
            self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str
        ) -> list[Lease]: ...

    def _ack_flows_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """`ack_many_and_claim` of a group with flows: one transaction, in which each landed
        ack's flow is stored right after it, before the claim (which may take the next
        steps)."""
        ack = _sql()["ack"]
        acked: list[bool] = []
        with self._transaction() as db:
            now = time.time()
            for a in acks:
                expires = None if a.result_ttl is None else now + a.result_ttl
                params = {"token": a.token, "result": a.result, "now": now,
                          "result_expires": expires}  # fmt: skip
                acked.append(db.execute(ack, params).rowcount == 1)
                if acked[-1] and a.flow is not None:
                    _store_flow(db, a.flow, now)
            return acked, self.claim(queues, n, lease_s, consumer_id)

    def dead_and_enqueue(
        self, token: str, reason: str, error: str | None, tasks: Sequence[NewTask]
    ) -> bool:
        sql = _sql()
        params = {"token": token, "reason": reason, "error": error, "detail": last_line(error)}
        with self._transaction() as db:
            now = time.time()
            if db.execute(sql["dead"], {**params, "now": now}).rowcount != 1:
                return False
            db.executemany(sql["enqueue"], enqueue_rows(tasks, now, restart=False))
            return True

    def chord_info(self, chord_id: str) -> ChordInfo | None:
        _, sizes = self._read("chord_size", {"chord": chord_id})
        if not sizes:
            return None
        _, rows = self._read("chord_results", {"chord": chord_id})
        return ChordInfo(chord_id, int(sizes[0][0]), {int(i): bytes(r) for i, r in rows})


def _store_flow(db: sqlite3.Connection, flow: Flow, now: float) -> None:
    """Store what a landed ack hands on (see `Flow`), in the ack's transaction."""
    sql = _sql()
    tasks = list(flow.follow)
    join = flow.join
    if join is not None:
        params = {"chord": join.chord, "idx": join.index, "result": join.result}
        if db.execute(sql["join_result"], params).rowcount == 1:
            count = {"chord": join.chord, "size": join.size, "now": now}
            [(done, size)] = db.execute(sql["join_count"], count).fetchall()
            if done == size:
                tasks.append(join.callback)
    if flow.release is not None:
        db.execute(sql["release_chord"], {"chord": flow.release})
        db.execute(sql["release_chord_results"], {"chord": flow.release})
    if tasks:
        db.executemany(sql["enqueue"], enqueue_rows(tasks, now, restart=False))


def _sql() -> dict[str, str]:
    from scoter.storage.sqlite import SQL  # which imports this module

    return SQL
