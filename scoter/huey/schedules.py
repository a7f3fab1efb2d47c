"""Huey's periodic schedules as scoter schedules.

A `crontab(...)` is scoter's already (read in UTC; a Huey app with `utc=False` reads it in
local time). Any other `validate_datetime` function is asked minute by minute, with the naive
datetime Huey would pass (UTC, or local time with `utc=False`), so that its slots too are
enqueued once per slot across consumers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Callable
from typing import Any

from scoter import periodic
from scoter.periodic import Crontab, Schedule

SCAN_BACK_MINUTES = 7 * 24 * 60
"""How far back a function schedule is searched for its latest slot: a week of minutes."""
SCAN_AHEAD_MINUTES = 31 * 24 * 60


def crontab(
    minute: str | int = "*",
    hour: str | int = "*",
    day: str | int = "*",
    month: str | int = "*",
    day_of_week: str | int = "*",
    strict: bool = False,
    *,
    tz: str | dt.tzinfo | None = None,
) -> Crontab:
    """Huey's `crontab(...)`: scoter's (`scoter.periodic.crontab`), with Huey's shortcuts
    `crontab.hourly()` (minute 0) and `crontab.daily()` (00:00), which take fields too."""
    return periodic.crontab(minute, hour, day, month, day_of_week, strict, tz=tz)


setattr(crontab, "hourly", functools.partial(crontab, minute="0"))  # noqa: B010
setattr(crontab, "daily", functools.partial(crontab, minute="0", hour="0"))  # noqa: B010


class LocalTime(dt.tzinfo):
    """This host's local time, with its DST rules (as `time.localtime` knows them)."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        if when is None:
            return dt.timedelta(seconds=time.localtime().tm_gmtoff)
        stamp = time.mktime((*when.replace(tzinfo=None).timetuple()[:8], -1))
        return dt.timedelta(seconds=time.localtime(stamp).tm_gmtoff)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, when: dt.datetime | None) -> str:
        return time.strftime("%Z")

    def fromutc(self, when: dt.datetime) -> dt.datetime:
        stamp = (when.replace(tzinfo=dt.timezone.utc)).timestamp()
        return when + dt.timedelta(seconds=time.localtime(stamp).tm_gmtoff)

    def __repr__(self) -> str:
        return "LocalTime()"


@dataclasses.dataclass(frozen=True)
class FunctionSchedule(Schedule):
    """The minutes at which `validate(datetime)` answers True."""

    validate: Callable[[dt.datetime], Any]
    utc: bool = True

    def _matches(self, minute: int) -> bool:
        if self.utc:
            when = dt.datetime.fromtimestamp(minute, dt.timezone.utc).replace(tzinfo=None)
        else:
            when = dt.datetime.fromtimestamp(minute)
        return bool(self.validate(when))

    def latest(self, t: int) -> int | None:
        minute = t - t % 60
        for _ in range(SCAN_BACK_MINUTES):
            if self._matches(minute):
                return minute
            minute -= 60
        return None

    def following(self, t: int) -> int:
        minute = t - t % 60 + 60
        for _ in range(SCAN_AHEAD_MINUTES):
            if self._matches(minute):
                return minute
            minute += 60
        return minute

    def __str__(self) -> str:
        return f"{getattr(self.validate, '__qualname__', 'function')}() minute by minute"


def schedule_of(validate: Callable[[dt.datetime], Any], utc: bool) -> Schedule:
    """The scoter schedule of a Huey `validate_datetime`."""
    if isinstance(validate, Crontab):
        if not utc and validate.tz is dt.timezone.utc:
            return dataclasses.replace(validate, tz=LocalTime())
        return validate
    if isinstance(validate, Schedule):
        return validate
    if not callable(validate):
        raise TypeError(f"periodic_task needs crontab(...) or a function, not {validate!r}")
    return FunctionSchedule(validate, utc)
