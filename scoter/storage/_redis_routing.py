"""Commands routed to the Redis Cluster primary that serves their key's slot.

A `Router` sends each command on a connection of the calling thread's own to the node that
serves the slot of the command's key, as `RedisCluster` sees the cluster, and pipelines the
commands of one call: every node's commands go in one write, all nodes' writes before any read.
The redirections of a cluster are handled here:

- `MOVED`: the slot has moved for good; the map is updated and the command is sent again to the
  new owner. A redirection is refused before the command runs, so sending it again is safe: an
  ack that meets `MOVED` lands on the new owner.
- `ASK`, `TRYAGAIN`: the slot is being migrated. A script is never run then: its keys are split
  between the two nodes (the node it is asked to go to holds only those migrated so far), and a
  script runs whole on one node or not at all. So the command waits, retrying with growing
  pauses, until the migration ends and `MOVED` names the new owner, at most `wait_s`; then
  TryAgainError (a transient error: the consumer backs off and retries).
- `CLUSTERDOWN` (a failover in progress): the same wait, with the map read again.
- `NOSCRIPT`: a node that has not seen the script yet (new, restarted, or the new owner of a
  slot) is sent it, and the command once more.

A connection that fails drops the connection and reads the cluster's map again; the commands it
carried are sent once more (as `RedisStorage` does on one server). A timeout is not retried.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    TryAgainError,
)

from scoter.storage._redis_connection import Held

PAUSE_FIRST_S = 0.005
PAUSE_MAX_S = 0.1
REDIRECT_TRIES = 5
"""MOVED replies a command follows at once before it pauses between tries too."""


BLOCK_MIN_S = 0.001
"""Shorter waits are not worth a blocking call (and BLPOP's 0 would block forever)."""


@dataclass(frozen=True, slots=True)
class Call:
    """One command for the node that serves `key`'s slot."""

    key: str
    command: tuple[Any, ...]
    script: str | None = None
    """The name of the script an EVALSHA runs (to load it after NOSCRIPT)."""
    wake: bool = False
    """A blocking wait (BLPOP): a redirection or error ends it as if it had been woken, and
    it is not sent again."""


class _Tries:
    """The state of one `Router.run`: the deadline of its waits and its pauses."""

    def __init__(self, wait_s: float) -> None:
        self.deadline = time.monotonic() + wait_s
        self.pause = PAUSE_FIRST_S
        self.moved = 0
        self.failed: set[str] = set()
        """Nodes whose connection failed once in this run."""

    def wait(self, exc: Exception, slot: int) -> None:
        """Pause before the next try; past the deadline raise TryAgainError."""
        if time.monotonic() + self.pause > self.deadline:
            raise TryAgainError(
                f"slot {slot} was still being migrated or failed over when the wait for it "
                f"ended: {exc}"
            ) from exc
        time.sleep(self.pause)
        self.pause = min(self.pause * 2, PAUSE_MAX_S)


class Router:
    """Runs `Call`s on the primaries of a Redis Cluster (see the module's docstring)."""

    def __init__(self, cluster: RedisCluster, scripts: dict[str, Script], wait_s: float) -> None:
        self.cluster = cluster
        self.scripts = scripts
        self.wait_s = wait_s
        self._local = threading.local()
        self._held: weakref.WeakSet[Held] = weakref.WeakSet()
        self._blocked: weakref.WeakSet[_Blocked] = weakref.WeakSet()
        self._slots: dict[str, int] = {}

    def slot(self, key: str) -> int:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = key_slot(key.encode())
            if len(self._slots) > 100_000:  # keys of queues no longer used
                self._slots.clear()
        return slot

    def node(self, key: str) -> ClusterNode:
        """The primary that serves `key`'s slot, as last seen."""
        try:
            return self.cluster.nodes_manager.get_node_from_slot(self.slot(key))
        except (RedisClusterException, IndexError, KeyError) as exc:  # no map: read it again
            self.refresh()
            raise ClusterDownError(f"no node serves slot {self.slot(key)}: {exc}") from exc

    def call(self, call: Call) -> Any:
        """The reply of one call; an error reply is raised."""
        reply = self.run([call])[0]
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply

    def run(self, calls: Sequence[Call]) -> list[Any]:
        """The reply of each call, in order, error replies (other than the redirections above)
        returned as exceptions. The calls are not one atomic step: each is on its own."""
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        tries = _Tries(self.wait_s)
        while todo:
            todo = self._round(calls, todo, replies, tries)
        return replies

    def close(self) -> None:
        for held in list(self._held):
            held.release()
        for blocked in list(self._blocked):
            blocked.close()
        self._local = threading.local()

    # -- waiting on several slots ----------------------------------------------------------

    def wait_any(self, keys: Sequence[str], timeout: float) -> None:
        """Block until one of the lists `keys` (on any slots) yields an element, or `timeout`.

        Each key gets a `BLPOP` of its own on a connection of its own, all sent at once; those
        that have not answered when this returns stay outstanding, and a later call reads
        them first (their own timeout ends them). A redirection or a failed connection ends
        the wait as if it had been woken: the caller claims, which follows it.
        """
        blocked: dict[str, _Blocked] = self._blocked_here()
        deadline = time.monotonic() + timeout
        while True:
            for key in keys:
                if key not in blocked and not self._block(blocked, key, deadline):
                    return
            ready = _readable(list(blocked.values()), deadline - time.monotonic())
            if not ready:
                return
            woken = False
            for one in ready:
                del blocked[one.key]
                if self._answer(one) and one.key in keys:  # not one a former call left
                    woken = True
            if woken or time.monotonic() >= deadline:
                return

    def _blocked_here(self) -> dict[str, _Blocked]:
        blocked: dict[str, _Blocked] | None = getattr(self._local, "blocked", None)
        if blocked is None or any(b.pid != os.getpid() for b in blocked.values()):
            blocked = self._local.blocked = {}  # not those a fork inherited
        return blocked

    def _block(self, blocked: dict[str, _Blocked], key: str, deadline: float) -> bool:
        """Send a BLPOP of `key` until `deadline`; False when it could not be sent."""
        remaining = deadline - time.monotonic()
        if remaining < BLOCK_MIN_S:
            return True
        try:
            one = _Blocked(self.cluster.get_redis_connection(self.node(key)).connection_pool, key)
        except (redis.RedisError, RedisClusterException):
            self.refresh()
            return False
        self._blocked.add(one)
        try:
            one.conn.send_command("BLPOP", key, f"{remaining:.3f}")
        except (redis.ConnectionError, OSError):
            one.close()
            self.refresh()
            return False
        blocked[key] = one
        return True

    def _answer(self, one: _Blocked) -> bool:
        """Read a BLPOP's reply: whether it woke (an element, or anything but a timeout)."""
        try:
            reply = one.conn.read_response()
        except MovedError as exc:
            one.release()
            self._moved(exc)
            return True
        except redis.ResponseError:
            one.release()
            return True
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            one.close()
            self.refresh()
            return True
        one.release()
        return reply is not None

    # -- one round: send every pending call, read every reply ------------------------------

    def _round(
        self, calls: Sequence[Call], todo: list[int], replies: list[Any], tries: _Tries
    ) -> list[int]:
        """Send the calls `todo` and read their replies into `replies`; returns the calls to
        send again (after one pause when a migration or failover was met)."""
        by_node: dict[str, tuple[ClusterNode, list[int]]] = {}
        for i in todo:
            node = self.node(calls[i].key)
            by_node.setdefault(node.name, (node, []))[1].append(i)
        sent: list[tuple[ClusterNode, Held, list[int]]] = []
        again: list[int] = []
        error: BaseException | None = None
        for node, indices in by_node.values():
            held = self._connection(node)
            try:
                held.send(*(calls[i].command for i in indices))
                sent.append((node, held, indices))
            except (redis.ConnectionError, OSError) as exc:
                error = error or self._failed(node, held, exc, tries)
                again += [i for i in indices if not calls[i].wake]
        waited: Exception | None = None
        for node, held, indices in sent:
            try:
                retry, wait = self._read(node, held, calls, indices, replies, tries)
            except BaseException as exc:  # the other nodes' replies are still read
                self._drop(held)
                error = error or exc
                continue
            again += retry
            waited = waited or wait
        if error is not None:
            raise error
        if waited is not None:
            tries.wait(waited, self.slot(calls[again[0]].key))
        return again

    def _read(
        self,
        node: ClusterNode,
        held: Held,
        calls: Sequence[Call],
        indices: list[int],
        replies: list[Any],
        tries: _Tries,
    ) -> tuple[list[int], Exception | None]:
        """Read the replies of `indices` from `node`: the calls to send again, and the
        redirection to wait out before that (None: no pause)."""
        again: list[int] = []
        wait: Exception | None = None
        load: set[str] = set()
        for n, i in enumerate(indices):
            try:
                replies[i] = held.conn.read_response()
            except redis.ResponseError as exc:
                action = None if calls[i].wake else self._redirected(calls[i], exc, tries)
                if action is None:
                    replies[i] = None if calls[i].wake else exc
                    continue
                again.append(i)
                if action == "wait":
                    wait = exc
                elif action == "load":
                    load.add(str(calls[i].script))
            except redis.TimeoutError:
                self._drop(held)
                raise
            except (redis.ConnectionError, OSError) as exc:
                failed = self._failed(node, held, exc, tries)
                if failed is not None:
                    raise failed from exc
                return again + [j for j in indices[n:] if not calls[j].wake], wait
        for script in load:  # after every reply of the round: the connection is in step
            held.send(("SCRIPT", "LOAD", self.scripts[script].script))
            held.conn.read_response()
        return again, wait

    def _redirected(self, call: Call, exc: redis.ResponseError, tries: _Tries) -> str | None:
        """What `exc` asks of the call: None (it is the reply), "again" (the map was updated),
        "wait" (a migration or failover: again after a pause) or "load" (the script)."""
        if isinstance(exc, MovedError):
            self._moved(exc)
            tries.moved += 1
            return "wait" if tries.moved > REDIRECT_TRIES else "again"
        if isinstance(exc, AskError | TryAgainError):
            return "wait"
        if isinstance(exc, ClusterDownError):
            self.refresh()
            return "wait"
        if isinstance(exc, NoScriptError) and call.script:
            return "load"
        return None

    def _failed(
        self, node: ClusterNode, held: Held, exc: BaseException, tries: _Tries
    ) -> BaseException | None:
        """A connection to `node` failed: drop it and read the map again. Returns the error to
        raise when the node failed before in this run (its calls are then not sent again)."""
        self._drop(held)
        if node.name in tries.failed:
            return exc
        tries.failed.add(node.name)
        self.refresh()
        return None

    def _moved(self, exc: MovedError) -> None:
        manager = self.cluster.nodes_manager
        move = getattr(manager, "move_slot", None) or getattr(
            manager, "update_moved_exception", None
        )
        if move is None:
            self.refresh()
        else:
            move(exc)

    def refresh(self) -> None:
        """Read the cluster's map again; a failure is left to the next call to meet."""
        with contextlib.suppress(redis.RedisError, RedisClusterException):
            self.cluster.nodes_manager.initialize()

    # -- connections -----------------------------------------------------------------------

    def _connection(self, node: ClusterNode) -> Held:
        held_by_node: dict[str, Held] | None = getattr(self._local, "held", None)
        if held_by_node is None:
            held_by_node = self._local.held = {}
        held = held_by_node.get(node.name)
        if held is None or held.pid != os.getpid():  # not one a fork inherited
            pool = self.cluster.get_redis_connection(node).connection_pool
            held = held_by_node[node.name] = Held(pool)
            self._held.add(held)
        return held

    def _drop(self, held: Held) -> None:
        """Never reuse a connection whose replies may still come."""
        held.conn.disconnect()
        held.release()
        held_by_node: dict[str, Held] = getattr(self._local, "held", {})
        for name, other in list(held_by_node.items()):
            if other is held:
                del held_by_node[name]


class _Blocked:
    """A BLPOP on a connection of its own, whose reply may still be on its way: the connection
    goes back to the pool once the reply is read, else (an error, the thread gone) it is
    closed."""

    def __init__(self, pool: redis.ConnectionPool, key: str) -> None:
        self.key = key
        self.pid = os.getpid()
        self.pool = pool
        self.conn: Any = pool.get_connection()
        self._closing = weakref.finalize(self, _close, pool, self.conn)

    def release(self) -> None:
        """The reply was read: the connection is in step again."""
        if self._closing.detach() is not None:
            self.pool.release(self.conn)

    def close(self) -> None:
        self._closing()

    def fileno(self) -> int:
        sock = getattr(self.conn, "_sock", None)
        return -1 if sock is None else int(sock.fileno())


def _close(pool: redis.ConnectionPool, conn: Any) -> None:
    conn.disconnect()
    pool.release(conn)


def _readable(waits: list[_Blocked], timeout: float) -> list[_Blocked]:
    """The waits whose reply has come, once one has or `timeout` passed."""
    ready = [w for w in waits if w.conn.can_read(0)]
    if ready or timeout <= 0 or not waits:
        return ready
    found, _, _ = select.select([w for w in waits if w.fileno() >= 0], [], [], timeout)
    return found
