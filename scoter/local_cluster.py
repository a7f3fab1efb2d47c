"""A throwaway Redis Cluster on loopback ports, for tests, the chaos suite and the benchmarks.

`LocalCluster(ports, directory).start()` runs one `redis-server --cluster-enabled yes` per port
(no persistence), joins them with `redis-cli --cluster create` as primaries without replicas,
and waits until every node sees the cluster `ok`. `stop()` kills them. It needs `redis-server`
and `redis-cli` on the PATH (`missing()` says which is not), and imports redis-py lazily.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 20.0


BUS_OFFSET = 10000
"""A node's cluster bus listens on its port plus this."""


def missing() -> str | None:
    """Why a local cluster cannot start here (a program not on the PATH), or None."""
    for program in ("redis-server", "redis-cli"):
        if shutil.which(program) is None:
            return f"{program} is not installed"
    return None


class LocalCluster:
    """Primaries on 127.0.0.1 at `ports`, their files under `directory`."""

    def __init__(self, ports: Sequence[int], directory: Path) -> None:
        self.ports = list(ports)
        self.directory = directory
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """A scoter URL naming every node as a seed (add `?prefix=...`)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> LocalCluster:
        busy = [p for p in self.ports if _in_use(p)]
        if busy:
            raise RuntimeError(f"cannot start a local Redis Cluster: port(s) {busy} in use")
        try:
            for port in self.ports:
                self.procs.append(self._server(port))
            for port in self.ports:
                self._wait_for(port, lambda c: c.ping())
            self._create()
            for port in self.ports:
                self._wait_for(port, _cluster_ok)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.procs = []

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, port: int) -> Any:
        """A plain redis-py client of the node at `port` (for CLUSTER commands)."""
        import redis

        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)

    def migration(self, key: str) -> Migration:
        """The move of `key`'s slot from its primary to the next one, not begun yet."""
        return Migration(self, key)

    def _server(self, port: int) -> subprocess.Popen[bytes]:
        where = self.directory / str(port)
        where.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(where),
            "--cluster-enabled", "yes", "--cluster-config-file", str(where / "nodes.conf"),
            "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--logfile", str(where / "redis.log"),
        ]  # fmt: skip
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _create(self) -> None:
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        command = ["redis-cli", "--cluster", "create", *nodes]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(command, capture_output=True, timeout=START_TIMEOUT_S, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"redis-cli --cluster create failed:\n{output}")

    def _wait_for(self, port: int, ready: Any) -> None:
        import redis

        client = self.client(port)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    if ready(client):
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Redis Cluster node on port {port} did not start")
                time.sleep(0.05)
        finally:
            client.close()


def free_ports(count: int, low: int = 20000, high: int = 45000) -> list[int]:
    """`count` ports on 127.0.0.1 that are free, each with its cluster bus port (+10000) free
    too: for clusters that must not meet another one started on the same machine."""
    found: list[int] = []
    for port in random.sample(range(low, high), high - low):
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            found.append(port)
            if len(found) == count:
                return found
    raise RuntimeError(f"no {count} free port pairs between {low} and {high}")


def ports_of(url: str) -> list[int]:
    """The node ports a redis+cluster:// URL names."""
    nodes = urllib.parse.urlsplit(url).netloc.rsplit("@", 1)[-1]
    return [int(node.rsplit(":", 1)[1]) for node in nodes.split(",")]


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _cluster_ok(client: Any) -> bool:
    info = client.execute_command("CLUSTER", "INFO").decode()
    return "cluster_state:ok" in info


class Migration:
    """A slot moved between primaries as `redis-cli --cluster reshard` moves it: IMPORTING on
    the target, MIGRATING on the source, MIGRATE of its keys batch by batch (the slot is split
    between the two meanwhile), then NODE on every primary."""

    def __init__(self, cluster: LocalCluster, key: str) -> None:
        self.clients = {port: cluster.client(port) for port in cluster.ports}
        first = self.clients[cluster.ports[0]]
        self.slot = int(first.execute_command("CLUSTER", "KEYSLOT", key))
        self.ids = {
            p: c.execute_command("CLUSTER", "MYID").decode() for p, c in self.clients.items()
        }
        self.source = self._owner(first)
        ports = cluster.ports
        self.target = ports[(ports.index(self.source) + 1) % len(ports)]

    def begin(self) -> None:
        self._setslot(self.target, "IMPORTING", self.ids[self.source])
        self._setslot(self.source, "MIGRATING", self.ids[self.target])

    def move(self, batch: int = 10, pause: float = 0.0) -> int:
        """MIGRATE every key of the slot, `batch` keys at a time, `pause` s between batches;
        returns how many keys moved."""
        source, moved = self.clients[self.source], 0
        while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, batch):
            self.move_keys(*keys)
            moved += len(keys)
            time.sleep(pause)
        return moved

    def move_keys(self, *keys: str | bytes) -> None:
        """MIGRATE these keys of the slot to the target."""
        self.clients[self.source].execute_command(
            "MIGRATE", "127.0.0.1", self.target, "", 0, 5000, "KEYS", *keys
        )

    def end(self) -> None:
        others = [p for p in self.clients if p not in (self.source, self.target)]
        for port in (self.target, self.source, *others):
            self._setslot(port, "NODE", self.ids[self.target])
        for client in self.clients.values():
            client.close()

    def run(self, batch: int = 10, pause: float = 0.0) -> Migration:
        self.begin()
        self.move(batch, pause)
        self.end()
        return self

    def _setslot(self, port: int, *how: str) -> None:
        self.clients[port].execute_command("CLUSTER", "SETSLOT", self.slot, *how)

    def _owner(self, client: Any) -> int:
        for first, last, node, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if first <= self.slot <= last:
                return int(node[1])
        raise RuntimeError(f"no primary serves slot {self.slot}")
