"""Huey's public helpers (`huey.utils`): time normalisation, `Error`, `load_class`,
`FileLock`."""

from __future__ import annotations

import calendar
import datetime as dt
import importlib
import os
import sys
import threading
import time
import warnings
from types import TracebackType
from typing import Any, NamedTuple

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class Error(NamedTuple):
    """A stored error result: `metadata` as `TaskException.metadata`."""

    metadata: dict[str, Any]


class _Skipped:
    """What a chord member that never ran (revoked, expired) gives its chord's callback."""

    def __repr__(self) -> str:
        return "SKIPPED"

    def __reduce__(self) -> str:
        """Unpickled as the one SKIPPED (`is SKIPPED` holds after a round trip)."""
        return "SKIPPED"


SKIPPED = _Skipped()


def utcnow() -> dt.datetime:
    """Now, as a naive datetime in UTC (Huey's internal clock with `utc=True`)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def load_class(path: str) -> Any:
    """The object `package.module.name` names."""
    module, _, name = path.rpartition(".")
    importlib.import_module(module)
    return getattr(sys.modules[module], name)


def is_naive(value: dt.datetime) -> bool:
    return value.utcoffset() is None


def make_naive(value: dt.datetime) -> dt.datetime:
    """An aware datetime as naive local time."""
    return dt.datetime(*time.localtime(calendar.timegm(value.utctimetuple()))[:6])


def aware_to_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def local_to_utc(value: dt.datetime) -> dt.datetime:
    """A naive local datetime as naive UTC."""
    return dt.datetime(*time.gmtime(time.mktime(value.timetuple()))[:6])


def normalize_time(
    eta: dt.datetime | None = None, delay: Any = None, utc: bool = True
) -> dt.datetime:
    """An eta as Huey keeps it: naive, in UTC with `utc=True`, else in local time. A naive
    `eta` is read as local time; `delay` is seconds or a timedelta from now."""
    if (delay is None) == (eta is None):
        raise ValueError("Specify either an eta (datetime) or delay (seconds)")
    if delay is not None:
        now = utcnow() if utc else dt.datetime.now()
        return now + (delay if isinstance(delay, dt.timedelta) else dt.timedelta(seconds=delay))
    if not isinstance(eta, dt.datetime):
        raise ValueError("eta must be a datetime instance")
    if utc:
        return local_to_utc(eta) if is_naive(eta) else aware_to_utc(eta)
    return eta if is_naive(eta) else make_naive(eta)


def normalize_expire_time(expires: Any, utc: bool = True) -> dt.datetime:
    if isinstance(expires, dt.datetime):
        return normalize_time(eta=expires, utc=utc)
    return normalize_time(delay=expires, utc=utc)


def to_timestamp(value: dt.datetime | float | None, utc: bool = True) -> float | None:
    """Seconds since the epoch of a Huey eta (naive: UTC with `utc`, else local)."""
    if value is None or isinstance(value, (int, float)):
        return value
    if value.tzinfo is not None:
        return value.timestamp()
    if utc:
        return calendar.timegm(value.timetuple()) + value.microsecond / 1e6
    return value.timestamp()


def from_timestamp(value: float | None, utc: bool = True) -> dt.datetime | None:
    """The naive datetime Huey shows for an epoch timestamp."""
    if value is None:
        return None
    if utc:
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).replace(tzinfo=None)
    return dt.datetime.fromtimestamp(value)


class FileLock:
    """An exclusive lock on a file (`flock`), between processes and between threads: each
    thread locks its own descriptor. `acquire()` blocks until it holds the lock. The file is
    created (with its directory) and never removed, so that every holder locks one inode."""

    def __init__(self, filename: str) -> None:
        if fcntl is None:
            warnings.warn("FileLock needs fcntl, which this platform lacks: it locks nothing",
                          stacklevel=2)  # fmt: skip
        self.filename = filename
        self._local = threading.local()
        directory = os.path.dirname(filename)
        if directory:
            os.makedirs(directory, exist_ok=True)

    def acquire(self) -> None:
        fd = os.open(self.filename, os.O_CREAT | os.O_RDWR)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        self._local.fd = fd

    def release(self) -> None:
        fd = getattr(self._local, "fd", None)
        if fd is None:
            return
        self._local.fd = None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
