"""Redis storage of pipelines and chords: the acks that hand a flow on (ack_flows_and_claim.lua),
a step's death with its error handler (dead_and_enqueue.lua), and chord countdowns (a hash
`P:chord:<id>` per chord: `size`, `done`, and `r<index>` per finished member, its result).

Each hand-off is stored by the script of the ack or death it follows: both happen or neither.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scoter.storage._records import last_line
from scoter.storage._redis_replies import new_tokens, result_args, us
from scoter.storage.base import Ack, ChordInfo, Flow, Lease, NewTask

if TYPE_CHECKING:
    import redis


class RedisFlows:
    """The flow methods of `RedisStorage` (a mixin: it uses the storage's connections)."""

    if TYPE_CHECKING:
        prefix: str
        client: redis.Redis
        _ids: str

        def _token_base(self, token: str) -> str | None: ...

        def _bases(self, queues: Sequence[str]) -> list[str]: ...

        def _call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any: ...

        def _leases(self, reply: list[Any]) -> list[Lease]: ...

    def _ack_flows_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """One script: every ack, the flows of those that land, then the claim."""

        now = time.time()
        acked = [False] * len(acks)
        keys: list[str] = []
        args: list[Any] = []
        flows: list[Any] = []
        sent: list[int] = []  # the index in `acks` of each ack sent (a token names its queue)
        for i, a in enumerate(acks):
            base = self._token_base(a.token)
            if base is not None:
                keys.append(base)
                args += (a.token, *result_args(a.result, a.result_ttl))
                flows += _flow_values(a.flow, now)
                sent.append(i)
        bases = self._bases(queues) if n > 0 else []
        n = n if bases else 0
        if not keys and not n:
            return acked, []
        args = [len(keys), n, us(lease_s), consumer_id, *args, *new_tokens(n), *flows]
        reply = self._call("ack_flows_and_claim", [self._ids, *keys, *bases], args)
        for i, flag in zip(sent, reply, strict=False):
            acked[i] = flag == 1
        return acked, self._leases(reply[len(keys) :])

    def dead_and_enqueue(
        self, token: str, reason: str, error: str | None, tasks: Sequence[NewTask]
    ) -> bool:
        base = self._token_base(token)
        if base is None:
            return False
        now = time.time()
        values = [v for task in tasks for v in _task_values(task, now)]
        has_error = "" if error is None else "1"
        args = [token, reason, has_error, error or "", last_line(error) or "", *values]
        return bool(self._call("dead_and_enqueue", [self._ids, base], args) == 1)

    def chord_info(self, chord_id: str) -> ChordInfo | None:
        fields: dict[bytes, bytes] = self.client.hgetall(f"{self.prefix}:chord:{chord_id}")  # type: ignore[assignment]
        if b"size" not in fields:
            return None
        results = {int(k[1:]): v for k, v in fields.items() if k.startswith(b"r")}
        return ChordInfo(chord_id, int(fields[b"size"]), results)


def _flow_values(flow: Flow | None, now: float) -> list[Any]:
    """A flow as ack_flows_and_claim.lua reads it (ARGV, per ack)."""
    if flow is None:
        return [0, "", ""]
    values: list[Any] = [len(flow.follow)]
    for task in flow.follow:
        values += _task_values(task, now)
    join = flow.join
    if join is None:
        values.append("")
    else:
        values += (join.chord, join.index, join.size, join.result)
        values += _task_values(join.callback, now)
    values.append(flow.release or "")
    return values


def _task_values(task: NewTask, now: float) -> tuple[Any, ...]:
    """A task as enqueue.lua takes it: 7 values."""

    eta = "" if task.eta is None else us(task.eta - now)
    return (task.id, task.name, task.queue, task.payload, task.priority, eta, task.max_crashes)
