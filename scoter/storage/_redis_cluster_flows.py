"""Pipelines and chords on a Redis Cluster, where no script crosses slots: a step's next step,
its chord and its error handler may live on other slots than its own queue.

So the hand-off takes two steps, as periodic slots do (slot_advance.lua). First, in the script
of the ack or death itself (ack_and_hand_off.lua, dead_and_hand_off.lua), what the step hands
on is kept in its queue's `P:{q}:handoffs` (the ack's token -> the hand-off, encoded): both
land or neither does. Then the same caller stores what the hand-off names and deletes it. Each
part of that second step is idempotent — the tasks are stored as `enqueue(restart_finished=
False)` stores them (an id already stored stays as it is), a chord counts each member index
once on its own slot (chord_join.lua, `P:chord:{<id>}`), and the member that completes it keeps
the callback there, pending, until it is stored — so a hand-off left by a caller that died
between the two is completed by the next `rescue` of any consumer, and stores each task once.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scoter.storage._records import last_line
from scoter.storage._redis_cluster_sweeps import flat
from scoter.storage._redis_replies import result_args
from scoter.storage._redis_routing import Call
from scoter.storage.base import Ack, ChordInfo, Flow, Join, Lease, NewTask

if TYPE_CHECKING:
    from scoter.storage._redis_routing import Router

log = logging.getLogger("scoter.storage")

HANDOFF_GRACE_S = 10.0
"""A hand-off kept this long (its caller died, or lost the server, before completing it) is
completed by a `rescue`: long enough that a live caller is done with it."""


class ClusterFlows:
    """The flow methods of `RedisClusterStorage` (a mixin: it uses the storage's calls)."""

    if TYPE_CHECKING:
        prefix: str
        router: Router

        def _base(self, queue: str) -> str: ...

        def _token_base(self, token: str) -> str | None: ...

        def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Call: ...

        def _run(self, calls: Sequence[Call]) -> list[Any]: ...

        def _call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any: ...

        def _all_queues(self) -> list[str]: ...

        def enqueue(self, tasks: Sequence[NewTask], *, restart_finished: bool = True) -> int: ...

        def claim(
            self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str
        ) -> list[Lease]: ...

    def _chord_key(self, chord_id: str) -> str:
        """The hash of a chord's countdown, on a slot of its own (the prefix holds no brace)."""
        return f"{self.prefix}:chord:{{{chord_id}}}"

    def _ack_flows_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """The acks, one script per queue keeping the hand-offs of those that land; then each
        hand-off completed; then the claim."""
        groups: dict[str, list[int]] = {}
        for i, a in enumerate(acks):
            base = self._token_base(a.token)
            if base is not None:
                groups.setdefault(base, []).append(i)
        calls = []
        for base, indices in groups.items():
            args: list[Any] = [len(indices)]
            for i in indices:
                args += (acks[i].token, *result_args(acks[i].result, acks[i].result_ttl))
            for i in indices:
                flow = acks[i].flow
                args += ("", "") if flow is None else (acks[i].token, _encode(flow))
            calls.append(self._eval("ack_and_hand_off", [base] * len(indices), args))
        acked = [False] * len(acks)
        for indices, reply in zip(groups.values(), self._run(calls), strict=True):
            for i, flag in zip(indices, reply, strict=True):
                acked[i] = flag == 1
        for i, a in enumerate(acks):
            base = self._token_base(a.token)
            if acked[i] and a.flow is not None and base is not None:
                self._hand_off(base, a.token, a.flow)
        return acked, self.claim(queues, n, lease_s, consumer_id) if n > 0 else []

    def dead_and_enqueue(
        self, token: str, reason: str, error: str | None, tasks: Sequence[NewTask]
    ) -> bool:
        base = self._token_base(token)
        if base is None:
            return False
        flow = Flow(follow=tuple(tasks))
        has_error = "" if error is None else "1"
        args = [token, reason, has_error, error or "", last_line(error) or "", _encode(flow)]
        if self._call("dead_and_hand_off", [base], args) != 1:
            return False
        self._hand_off(base, token, flow)
        return True

    def _hand_off(self, base: str, key: str, flow: Flow) -> None:
        """The second step: store what `flow` names, then delete the hand-off `key` of the
        queue at `base`. A failure leaves it to a rescue (`HANDOFF_GRACE_S`)."""
        try:
            self._complete(flow)
            self.router.call(Call(base, ("HDEL", base + "handoffs", key)))
        except Exception as exc:
            log.warning("a hand-off of queue %s is left to complete: %r", base, exc)

    def _complete(self, flow: Flow) -> None:
        tasks = list(flow.follow)
        join = flow.join
        pending = None
        if join is not None:
            key = self._chord_key(join.chord)
            args = [join.index, join.size, join.result, _encode(Flow((join.callback,)))]
            pending = self._call("chord_join", [key], args)
            if pending is not None:
                tasks += _decode(pending)[0].follow
        if tasks:
            self.enqueue(tasks, restart_finished=False)
        if join is not None and pending is not None:
            key = self._chord_key(join.chord)
            self.router.call(Call(key, ("HDEL", key, "callback")))
        if flow.release is not None:
            key = self._chord_key(flow.release)
            self.router.call(Call(key, ("DEL", key)))

    def complete_hand_offs(self) -> None:
        """Complete the hand-offs kept longer than HANDOFF_GRACE_S: their callers died (or
        lost the cluster) between the two steps. What `rescue` does after the leases."""
        for queue in self._all_queues():
            base = self._base(queue)
            kept = self.router.call(Call(base, ("HGETALL", base + "handoffs")))
            pairs = _pairs(kept)
            for key, encoded in pairs.items():
                flow, at = _decode(encoded)
                if time.time() - at > HANDOFF_GRACE_S:
                    self._hand_off(base, key, flow)

    def chord_info(self, chord_id: str) -> ChordInfo | None:
        key = self._chord_key(chord_id)
        fields = _pairs(self.router.call(Call(key, ("HGETALL", key))), text=False)
        if "size" not in fields:
            return None
        results = {int(k[1:]): v for k, v in fields.items() if k.startswith("r")}
        return ChordInfo(chord_id, int(fields["size"]), results)


def _pairs(reply: Any, text: bool = True) -> dict[str, Any]:
    """An HGETALL reply (RESP2 list or RESP3 map) as a dict of text keys; values as text or as
    they came (bytes)."""
    values = flat(reply or [])
    return {
        values[i].decode(): values[i + 1].decode() if text else values[i + 1]
        for i in range(0, len(values), 2)
    }


def _row(t: NewTask) -> list[Any]:
    payload = base64.b64encode(t.payload).decode()
    return [t.id, t.name, t.queue, payload, t.priority, t.eta, t.max_crashes]


def _task(r: list[Any]) -> NewTask:
    return NewTask(r[0], r[1], r[2], base64.b64decode(r[3]), r[4], r[5], r[6])


def _encode(flow: Flow) -> str:
    """A hand-off as kept in the storage: what `flow` names, and when."""
    join = flow.join
    return json.dumps({
        "at": time.time(),
        "follow": [_row(t) for t in flow.follow],
        "join": None if join is None else [
            join.chord, join.index, join.size, base64.b64encode(join.result).decode(),
            _row(join.callback),
        ],
        "release": flow.release,
    }, separators=(",", ":"))  # fmt: skip


def _decode(encoded: str | bytes) -> tuple[Flow, float]:
    """A kept hand-off: the flow, and when it was kept."""
    kept = json.loads(encoded)
    j = kept["join"]
    join = None
    if j is not None:
        join = Join(j[0], j[1], j[2], base64.b64decode(j[3]), _task(j[4]))
    flow = Flow(tuple(_task(r) for r in kept["follow"]), join, kept["release"])
    return flow, float(kept["at"])
