"""What one process holds of its SQLite storages, and how a fork's child gets its own
(DESIGN G10): the inherited connections are closed without letting SQLite checkpoint."""

from __future__ import annotations

import functools
import os
import sqlite3
import struct
import sys
import threading
import weakref
from typing import Protocol

from scoter.storage._inotify import FileWatch

SHARED_FIRST = 0x40000000 + 2
SHARED_SIZE = 510
"""The bytes of a database file that SQLite read-locks for SHARED and write-locks for EXCLUSIVE
(os_unix.c: after the pending and reserved bytes at 1 GiB)."""


class Shared(Protocol):
    """A storage whose process state a fork's child replaces."""

    _here: Here
    _file: str


class Here:
    """What one process holds of a storage: a fork's child makes its own (DESIGN G10)."""

    __slots__ = ("connections", "local", "lock", "pid", "watches")

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.local = threading.local()
        self.lock = threading.RLock()
        """Held by every call while it uses a connection: threads take turns (see `_write`),
        and os.fork waits for the call in progress."""
        self.connections: list[sqlite3.Connection] = []
        self.watches: list[FileWatch] = []


STORAGES: weakref.WeakSet[Shared] = weakref.WeakSet()
"""The process's storages, for os.fork's hooks and a fork's child."""
FORK_LOCK = threading.Lock()
_HELD: list[threading.RLock] = []
"""The storages' locks that os.fork holds while it forks."""
_INHERITED: list[sqlite3.Connection] = []
"""Connections a fork inherited in the middle of a call (a fork that skipped os.fork's hooks):
never closed nor collected, since closing one could wait forever for a mutex held by a thread
that the child does not have."""


def settle_fork() -> None:
    """Give every storage whose state a fork inherited a state of this process, and close the
    inherited connections (`_close_inherited`). Call with FORK_LOCK held."""
    pid = os.getpid()
    idle: dict[str, list[sqlite3.Connection]] = {}
    for storage in list(STORAGES):
        old = storage._here
        if old.pid == pid:
            continue
        storage._here = Here()
        for watch in old.watches:
            watch.close()  # an inotify descriptor: the parent's own stays open
        if old.lock.acquire(blocking=False):  # no call was using the connections at the fork
            idle.setdefault(storage._file, []).extend(old.connections)
        else:
            _INHERITED.extend(old.connections)
    for file, connections in idle.items():
        _close_inherited(file, connections)


def _close_inherited(file: str, connections: list[sqlite3.Connection]) -> None:
    """Close connections that a fork inherited, and keep SQLite from checkpointing as it does.

    While one is open, this process's SQLite counts the parent's locks on the file as its own
    (it counts them per process; the POSIX locks themselves stayed with the parent), so a
    connection opened here would take none, and another process could checkpoint and delete
    the WAL it goes on committing to: children that only dropped them still lost tasks.
    But a process's last close of a database checkpoints and deletes the WAL if it gets the
    EXCLUSIVE lock, and these connections may see a WAL index from before the fork, so a
    deleted WAL could hold another process's commits. An OFD read lock on the same bytes, which
    conflicts even with this process's own POSIX locks, keeps the close from getting it
    (Linux); Python 3.12+ turns the checkpoint off as well. Elsewhere the close checkpoints as
    any last close does.
    """
    guard = _hold_shared(file)
    try:
        for db in connections:
            if sys.version_info >= (3, 12):
                db.setconfig(sqlite3.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, True)
            db.close()
    finally:
        if guard is not None:
            os.close(guard)


def _hold_shared(file: str) -> int | None:
    """A descriptor of `file` with an OFD read lock on its SHARED bytes, or None (no OFD locks
    on this system, or no file: SQLite checkpoints no deleted database)."""
    import fcntl  # POSIX, as fork is

    command = getattr(fcntl, "F_OFD_SETLKW", None)
    if command is None:
        return None
    try:
        fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        lock = struct.pack("hhqqi", fcntl.F_RDLCK, os.SEEK_SET, SHARED_FIRST, SHARED_SIZE, 0)
        fcntl.fcntl(fd, command, lock)
    except OSError:
        os.close(fd)
        return None
    return fd


def _before_fork() -> None:
    """os.fork waits for the storage calls in progress and lets none start until it is done: a
    connection in the middle of a call could be neither used nor closed in the child."""
    FORK_LOCK.acquire()
    pid = os.getpid()
    for storage in list(STORAGES):
        here = storage._here
        if here.pid == pid:  # the locks of an inherited state may be held for good
            here.lock.acquire()
            _HELD.append(here.lock)


def _after_fork(child: bool) -> None:
    while _HELD:
        _HELD.pop().release()
    try:
        if child:  # at once: a child that never calls a storage could close it unguarded at exit
            settle_fork()
    finally:
        FORK_LOCK.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=functools.partial(_after_fork, False),
        after_in_child=functools.partial(_after_fork, True),
    )


class Transaction:
    """`with` block running in BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), holding the
    process's write lock throughout."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db = db
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()
