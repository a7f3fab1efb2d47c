"""Periodic schedules (`crontab`, `every`) and the slot maths of periodic tasks.

A schedule names instants, its *slots*: whole seconds since the epoch. Every consumer computes
the same slots, and the storage keeps each schedule's last enqueued slot, so that enqueueing a
slot's task and advancing that slot are one compare-and-set (`Storage.enqueue_slot`): however
many consumers run the scheduler, each slot is enqueued once.
"""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scoter.task import ID

MAX_CATCH_UP = 100
"""`catch_up=True` enqueues at most this many missed slots of one schedule (the latest)."""
ON_TIME_S = 60.0
"""A slot enqueued at most this long after its time is on time: what `catch_up=False` runs,
and what a schedule seen for the first time runs."""
SEARCH_DAYS = 366 * 8 + 2
"""How far a crontab's slots are looked for: 29 February may be 8 years away (2096 → 2104)."""
STAMP = "%Y%m%dT%H%M%SZ"
UTC = dt.timezone.utc


class Schedule(abc.ABC):
    """When a periodic task runs: its slots, as whole seconds since the epoch."""

    @abc.abstractmethod
    def latest(self, t: int) -> int | None:
        """The latest slot at or before `t`, or None when there is none within reach."""

    @abc.abstractmethod
    def following(self, t: int) -> int:
        """The earliest slot after `t`."""

    def slots(self, after: int, until: int, limit: int) -> list[int]:
        """The latest `limit` slots in (after, until], oldest first."""
        found: list[int] = []
        slot = self.latest(until)
        while slot is not None and slot > after and len(found) < limit:
            found.append(slot)
            slot = self.latest(slot - 1)
        return found[::-1]


@dataclass(frozen=True, slots=True)
class Every(Schedule):
    """Slots every `seconds`, counted from the epoch (so every hour starts on the hour, UTC)."""

    seconds: int

    def latest(self, t: int) -> int | None:
        return t - t % self.seconds

    def following(self, t: int) -> int:
        return t - t % self.seconds + self.seconds

    def __str__(self) -> str:
        return f"every {self.seconds} s"


def every(
    interval: float | dt.timedelta | None = None,
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    days: float = 0,
) -> Every:
    """A schedule of fixed intervals: `every(seconds=10)`, `every(timedelta(hours=1))`.

    The interval is a whole number of seconds, at least one; slots are its multiples since
    the epoch, so every consumer agrees on them without keeping a start time.
    """
    if isinstance(interval, dt.timedelta):
        interval = interval.total_seconds()
    total = (interval or 0) + seconds + 60 * minutes + 3600 * hours + 86400 * days
    if total < 1 or total != int(total):
        raise ValueError(
            f"every(...) needs a whole number of seconds, at least 1, not {total!r}: "
            "e.g. every(seconds=10) or every(timedelta(minutes=5))"
        )
    return Every(int(total))


# -- crontab ----------------------------------------------------------------------------------

_RANGE = re.compile(r"(\d+)-(\d+)(?:/(\d+))?")
_STEP = re.compile(r"\*/(\d+)")
FIELDS = (
    ("minute", range(60)),
    ("hour", range(24)),
    ("day", range(1, 32)),
    ("month", range(1, 13)),
    ("day_of_week", range(8)),  # 0-6 from Sunday; 7 is Sunday too
)


@dataclass(frozen=True, slots=True)
class Crontab(Schedule):
    """A crontab schedule: the minutes whose wall-clock time in `tz` matches every field."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday … 6 = Saturday (Huey's numbering)."""
    tz: dt.tzinfo
    spec: str

    def __call__(self, when: dt.datetime) -> bool:
        """Whether `when` (its wall-clock time in `tz`; naive is read as in `tz`) matches,
        as Huey's crontab test function answers."""
        local = when.astimezone(self.tz) if when.tzinfo else when
        return (
            self._day_matches(local.date())
            and local.hour in self.hours
            and local.minute in self.minutes
        )

    def _day_matches(self, day: dt.date) -> bool:
        """Day of month and day of week must both match (Huey's rule, not cron's "either")."""
        weekday = (day.weekday() + 1) % 7
        return day.month in self.months and day.day in self.days and weekday in self.weekdays

    def _day_slots(self, day: dt.date) -> list[int]:
        """The slots of one local day, sorted. A wall time a DST gap skips runs as far after
        the gap as it was into it (PEP 495, fold=0); a repeated one runs at its first pass."""
        if not self._day_matches(day):
            return []
        y, mo, d = day.year, day.month, day.day
        return sorted(
            {
                int(dt.datetime(y, mo, d, h, m, tzinfo=self.tz).timestamp())
                for h in self.hours
                for m in self.minutes
            }
        )

    def _days(self, t: int, step: int) -> Iterator[dt.date]:
        """Local days around `t`, walking by `step` (±1), starting a day behind."""
        day = dt.datetime.fromtimestamp(t, self.tz).date() - dt.timedelta(days=step)
        for _ in range(SEARCH_DAYS):
            yield day
            day += dt.timedelta(days=step)

    def latest(self, t: int) -> int | None:
        best: int | None = None
        for day in self._days(t, -1):
            earlier = [s for s in self._day_slots(day) if s <= t]
            if earlier:
                best = max(earlier) if best is None else max(best, max(earlier))
            if best is not None and day < dt.datetime.fromtimestamp(best, self.tz).date():
                return best  # a slot shifted past midnight by a gap is never missed
        return best

    def following(self, t: int) -> int:
        best: int | None = None
        for day in self._days(t, 1):
            later = [s for s in self._day_slots(day) if s > t]
            if later:
                best = min(later) if best is None else min(best, min(later))
            if best is not None and day > dt.datetime.fromtimestamp(best, self.tz).date():
                return best
        if best is None:
            raise ValueError(f"{self.spec} has no slot within {SEARCH_DAYS} days")
        return best

    def __str__(self) -> str:
        return self.spec


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
    """A crontab schedule, with Huey's fields and meaning: each field is `*`, `*/n`, `m`,
    `m-n` (also `m-n/s`; a range that runs backwards wraps around: hour '22-2' is 22, 23, 0,
    1, 2) or a comma-separated list of them; day_of_week 0 is Sunday (7 too); day and
    day_of_week must both match. Read in UTC unless `tz` names a zone
    ("Europe/Berlin").

    :param strict: raise ValueError for a piece of a field that is not one of these forms;
        by default such a piece is ignored, as Huey does (a field left matching nothing
        raises in both modes, and so do numbers out of range).
    """
    zone = _zone(tz)
    values = {}
    for (name, allowed), raw in zip(FIELDS, (minute, hour, day, month, day_of_week), strict=True):
        values[name] = _field(name, str(raw), allowed, strict)
    weekdays = frozenset(v % 7 for v in values["day_of_week"])
    spec = f"crontab({minute} {hour} {day} {month} {day_of_week}"
    spec += f" {getattr(zone, 'key', zone)})" if tz is not None else ")"
    schedule = Crontab(
        tuple(sorted(values["minute"])), tuple(sorted(values["hour"])),
        frozenset(values["day"]), frozenset(values["month"]), weekdays, zone, spec,
    )  # fmt: skip
    schedule.following(0)  # raises for a date that never comes (30 February)
    return schedule


def _zone(tz: str | dt.tzinfo | None) -> dt.tzinfo:
    if tz is None:
        return UTC
    if isinstance(tz, dt.tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Berlin' "
            "(install the tzdata package where the system has no zone database)"
        ) from exc


def _field(name: str, text: str, allowed: range, strict: bool) -> set[int]:
    """The values one crontab field selects; ValueError says what is wrong."""
    chosen: set[int] = set()
    for piece in text.replace(" ", "").split(","):
        picked = _piece(name, piece, allowed)
        if picked is None and strict:
            raise ValueError(f"crontab {name}={text!r}: {piece!r} is not *, */n, m, m-n or m-n/s")
        chosen |= picked or set()
    if not chosen:
        raise ValueError(f"crontab {name}={text!r} matches no {name}: it would never run")
    return chosen


def _piece(name: str, piece: str, allowed: range) -> set[int] | None:
    """The values of one piece; None when it is not a crontab form."""
    if piece == "*":
        return set(allowed)
    step = _STEP.fullmatch(piece)
    if step:
        if name == "day_of_week":
            raise ValueError("crontab day_of_week cannot use */n: list the days, e.g. '1,3,5'")
        return set(allowed[:: _positive(name, int(step[1]))])
    span = _RANGE.fullmatch(piece)
    if span:
        low, high = _check(name, int(span[1]), allowed), _check(name, int(span[2]), allowed)
        return set(_span(name, low, high, allowed)[:: _positive(name, int(span[3] or 1))])
    if piece.isdigit():
        return {_check(name, int(piece), allowed)}
    return None


def _span(name: str, low: int, high: int, allowed: range) -> list[int]:
    """The values from `low` to `high`, in order; a range that runs backwards wraps around
    the field's end, as Huey reads it: hour '22-2' is 22, 23, 0, 1, 2; day_of_week '5-1' is
    Friday to Monday, and '7-2' Sunday to Tuesday (7 is Sunday)."""
    if low <= high:
        return list(range(low, high + 1))
    if name == "day_of_week":
        low, allowed = low % 7, range(7)
        if low <= high:
            return list(range(low, high + 1))
    return [*range(low, allowed.stop), *range(allowed.start, high + 1)]


def _check(name: str, value: int, allowed: range) -> int:
    if value not in allowed:
        raise ValueError(
            f"crontab {name} {value} is out of range: use {allowed.start}-{allowed.stop - 1}"
        )
    return value


def _positive(name: str, step: int) -> int:
    if step < 1:
        raise ValueError(f"crontab {name}: a step must be at least 1")
    return step


# -- slots and their tasks --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Periodic:
    """A registered periodic task: its name, schedule and missed-slot policy."""

    name: str
    schedule: Schedule
    catch_up: bool | None = None
    """What becomes of slots enqueued late (more than ON_TIME_S after their time, as when no
    consumer ran): None runs the latest of them once; True each (at most MAX_CATCH_UP);
    False none. Slots on time always run."""

    def plan(self, last: int | None, now: float) -> tuple[int, list[int]] | None:
        """(the slot to store as last, the slots to enqueue) at `now`, when `last` is the
        stored last slot; None when there is no new slot."""
        t = int(now)
        due = self.schedule.latest(t)
        if due is None or (last is not None and due <= last):
            return None
        if last is None:  # a new schedule starts now
            return due, [due] if now - due <= ON_TIME_S else []
        missed = self.schedule.slots(last, t, MAX_CATCH_UP)
        if self.catch_up:
            return due, missed
        on_time = [s for s in missed if now - s <= ON_TIME_S]
        return due, on_time or ([] if self.catch_up is False else [due])


def slot_id(name: str, slot: int) -> str:
    """The task id of a schedule's slot: its name and the slot's UTC time, so that a second
    enqueue of the same slot finds the first one live. A name that cannot be part of an id
    (letters beyond ASCII, `/`, too long) is replaced by a digest of it."""
    stem = name if ID.fullmatch(name) and len(name) <= 160 else _digest(name)
    return f"{stem}:at:{_stamp(slot)}"


def slot_of(name: str, task_id: str) -> dt.datetime | None:
    """The slot a task id names for task `name` (an aware UTC datetime), or None when the id
    is not one of `slot_id`'s."""
    stamp = task_id.rpartition(":at:")[2]
    try:
        when = dt.datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    return when if slot_id(name, int(when.timestamp())) == task_id else None


def _stamp(slot: int) -> str:
    return dt.datetime.fromtimestamp(slot, UTC).strftime(STAMP)


def _digest(name: str) -> str:
    return "p" + hashlib.sha256(name.encode()).hexdigest()[:32]
