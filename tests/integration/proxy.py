"""A TCP proxy on loopback that can cut the link the way a network partition does.

`blackhole()` stops forwarding in both directions but keeps every socket open, so that both
ends wait (nothing is refused, nothing is reset: a switch that drops packets, as far as a
client can tell); `resume()` forwards again, including what was held; `reset()` ends every
connection with a TCP reset. New connections are accepted during a blackhole and wait too.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

CHUNK = 65536
POLL_S = 0.05
"""How often a pump that holds data looks whether forwarding resumed (bounded waits only)."""


class PartitionProxy:
    """Forwards 127.0.0.1:<port> to `target` until closed."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def rewrite(self, url: str) -> str:
        """`url` with the target's port replaced by the proxy's."""
        return url.replace(f":{self.target[1]}", f":{self.port}", 1)

    def blackhole(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def reset(self) -> None:
        """Close every connection with a reset (SO_LINGER 0); forwarding goes on for new ones."""
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.close()
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self._open.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.reset()

    @contextlib.contextmanager
    def cut(self) -> Iterator[None]:
        self.blackhole()
        try:
            yield
        finally:
            self.resume()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._track(client)
        self._wait_open()
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        self._track(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _wait_open(self) -> None:
        while not self._open.wait(POLL_S) and not self._closed:
            pass

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                self._wait_open()
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
