"""PostgreSQL storage of pipelines and chords: the acks that hand a flow on, a step's death with
its error handler, and chord countdowns (tables `chords` and `chord_results`, migration 0007).

Each hand-off is written in the transaction of the ack or death it follows: both commit or
neither does. A group of acks with flows costs a few statements in one transaction (the acks,
each chord's countdown, the next steps, the claim) where a group without costs one.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from scoter.storage._postgres_schema import fetch
from scoter.storage._records import last_line
from scoter.storage.base import Ack, ChordInfo, Flow, Lease, NewTask

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[Any]


class PostgresFlows:
    """The flow methods of `PostgresStorage` (a mixin: it uses the storage's connections)."""

    if TYPE_CHECKING:
        _sql: dict[str, str]

        def _connection(self) -> AbstractContextManager[Connection]: ...

        def _enqueue(
            self, conn: Connection, tasks: Sequence[NewTask], restart_finished: bool = True
        ) -> int: ...

        def _leases(self, rows: list[tuple[Any, ...]]) -> list[Lease]: ...

        def _rows(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]: ...

    def _ack_flows_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """`ack_many_and_claim` of a group with flows, in one transaction: the acks (the
        statement of `ack_many_and_claim`, claiming nothing), the flows of those that landed,
        then the claim, which may take the next steps."""
        first: dict[str, int] = {}  # each token's first position: a repeated one lands once
        for i, a in enumerate(acks):
            first.setdefault(a.token, i)
        sent = [acks[i] for i in first.values()]
        params = {
            "tokens": [a.token for a in sent], "results": [a.result for a in sent],
            "result_ttls": [None if a.result_ttl is None else float(a.result_ttl) for a in sent],
            "queues": [], "n": 0, "lease": lease_s, "consumer": consumer_id,
        }  # fmt: skip
        acked = [False] * len(acks)
        claimed: list[tuple[Any, ...]] = []
        with self._connection() as conn, conn.transaction():
            landed = set(fetch(conn, self._sql["ack_many_and_claim"], params)[0][0] or ())
            for position, i in enumerate(first.values(), 1):
                acked[i] = position in landed
            landed_flows = [a.flow for a, ok in zip(acks, acked, strict=True) if ok]
            self._store_flows(conn, [flow for flow in landed_flows if flow is not None])
            if n > 0 and queues:
                claim = {"queues": list(queues), "n": n, "lease": lease_s, "consumer": consumer_id}
                claimed = fetch(conn, self._sql["claim"], claim)
        # After the commit: a claimed row unfit to run is quarantined by a write of its own.
        return acked, self._leases(claimed)

    def _store_flows(self, conn: Connection, flows: list[Flow]) -> None:
        """What landed acks hand on (see `Flow`). Chords are counted in id order, so that two
        transactions counting the same two chords cannot wait for each other."""
        tasks = [task for flow in flows for task in flow.follow]
        joins = sorted((f.join for f in flows if f.join), key=lambda j: (j.chord, j.index))
        for join in joins:
            params = {"chord": join.chord, "idx": join.index, "size": join.size,
                      "result": join.result}  # fmt: skip
            last = fetch(conn, self._sql["join"], params)
            if last and last[0][0]:
                tasks.append(join.callback)
        for chord in sorted({f.release for f in flows if f.release is not None}):
            conn.execute(self._sql["release_chord"], {"chord": chord})
        if tasks:
            self._enqueue(conn, tasks, restart_finished=False)

    def dead_and_enqueue(
        self, token: str, reason: str, error: str | None, tasks: Sequence[NewTask]
    ) -> bool:
        params = {"token": token, "reason": reason, "error": error, "detail": last_line(error)}
        with self._connection() as conn, conn.transaction():
            if conn.execute(self._sql["dead"], params).rowcount != 1:
                return False
            self._enqueue(conn, tasks, restart_finished=False)
            return True

    def chord_info(self, chord_id: str) -> ChordInfo | None:
        rows = self._rows("chord_info", {"chord": chord_id})
        if not rows:
            return None
        results = {int(r[1]): bytes(r[2]) for r in rows if r[1] is not None}
        return ChordInfo(chord_id, int(rows[0][0]), results)
