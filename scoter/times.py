"""Times a caller gives — an eta, a delay, an expiry, a revocation's end — as seconds since the
epoch.

A number of seconds or a `timedelta` counts from now (from a periodic slot's time, for a slot's
expiry); a `datetime` is an instant: an aware one as given, a naive one read as this host's local
time (Python's own reading, `datetime.timestamp()`, and Huey's with `utc=False`). Give aware
datetimes (`datetime.now(timezone.utc)`) when producers and consumers live in other time zones.
"""

from __future__ import annotations

import datetime as dt
import math
import time

Moment = float | dt.timedelta | dt.datetime
"""Seconds from now, a timedelta from now, or a datetime (naive: local time)."""


def instant(when: dt.datetime) -> float:
    """Seconds since the epoch of `when`; naive is read as local time."""
    return when.timestamp()


def to_eta(delay: float | dt.timedelta | None, eta: float | dt.datetime | None) -> float | None:
    """One epoch timestamp from either a delay (seconds or timedelta) or an eta (a timestamp
    or a datetime, naive read as local time)."""
    if delay is not None and eta is not None:
        raise ValueError("give delay or eta, not both")
    if isinstance(delay, dt.timedelta):
        delay = delay.total_seconds()
    if delay is not None:
        return time.time() + _seconds("delay", delay, least=None)
    if isinstance(eta, dt.datetime):
        return instant(eta)
    return None if eta is None else _seconds("eta", eta, least=None)


def to_deadline(option: str, value: Moment | None, start: float) -> float | None:
    """The instant `value` names: seconds or a timedelta after `start`, or a datetime.

    :param option: the option's name, for errors (`expires`, `revoke_until`).
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return instant(value)
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    return start + _seconds(option, value, least=0.0)


def check_expires(expires: float | None, eta: float | None, now: float) -> None:
    """Refuse an expiry that no run could meet: past already, or before the task's eta."""
    if expires is None:
        return
    if expires <= now:
        raise ValueError(
            f"expires is {now - expires:.1f} s in the past: the task could never run; give "
            "seconds from now, a timedelta, or a later datetime (a naive one is local time)"
        )
    if eta is not None and expires <= eta:
        raise ValueError(
            f"expires comes {eta - expires:.1f} s before the task's eta: it would never run; "
            "give a later expires, or none"
        )


def _seconds(option: str, value: object, *, least: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(
            f"{option} must be seconds (a finite number), a timedelta or a datetime, not {value!r}"
        )
    if least is not None and value <= least:
        raise ValueError(f"{option} must be more than {least:g} seconds, not {value!r}")
    return float(value)
