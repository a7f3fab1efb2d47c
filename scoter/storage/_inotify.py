"""Wake-ups on file changes, from Linux's inotify (through ctypes): an idle SQLite consumer sleeps
until a process writes the database file instead of looking at it on a timer.

`FileWatch.open` returns None where inotify is missing (macOS, Windows) or refused (the
per-user instance limit, fs.inotify.max_user_instances): the caller then polls.
"""

from __future__ import annotations

import ctypes
import functools
import os
import select
import struct
import time
import weakref
from collections.abc import Iterable

IN_MODIFY = 0x002
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
WATCHED = IN_MODIFY | IN_CREATE | IN_MOVED_TO
"""A write to a file; a file (re)created, as SQLite's -wal file is after a checkpoint."""
LOST_TRACK = IN_Q_OVERFLOW | IN_IGNORED
"""Events dropped, or the watch gone (its directory removed): count as a change."""
EVENT = struct.Struct("iIII")
"""struct inotify_event: wd, mask, cookie, len; then `len` bytes of NUL-padded file name."""
READ_SIZE = 64 * 1024


class FileWatch:
    """Changes to some files of one directory."""

    def __init__(self, fd: int, names: frozenset[bytes]) -> None:
        self._fd = fd
        self._names = names
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self.close = weakref.finalize(self, os.close, fd)
        """Close the watch (at the latest when it is collected); later calls do nothing."""

    @classmethod
    def open(cls, directory: str, names: Iterable[str]) -> FileWatch | None:
        """A watch of the files `names` in `directory`, or None where inotify is unavailable."""
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None
        if libc.inotify_add_watch(fd, os.fsencode(directory), WATCHED) < 0:
            os.close(fd)
            return None
        return cls(fd, frozenset(os.fsencode(name) for name in names))

    def wait(self, timeout: float) -> bool:
        """Block until one of the files changes (True) or `timeout` seconds pass (False).
        Changes made before the call and not yet waited for count."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if not self._poll.poll(max(0, round(left * 1000))):
                return False
            if self._changed():
                return True

    def _changed(self) -> bool:
        """Read the pending events: whether one is about a watched file."""
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return False
        changed, offset = False, 0
        while offset < len(data):
            _, mask, _, size = EVENT.unpack_from(data, offset)
            start = offset + EVENT.size
            name = data[start : start + size].rstrip(b"\0")
            changed = changed or bool(mask & LOST_TRACK) or name in self._names
            offset = start + size
        return changed


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, if it has inotify (looked up once per process)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # no C library to open by None (Windows)
        return None
    return libc if hasattr(libc, "inotify_init1") else None
