"""Schedules and slot maths against a clock the test sets: crontab fields as Huey reads them,
time zones across DST, every(), the missed-slot policies, slot ids and the scheduler."""

from __future__ import annotations

import datetime as dt

import pytest

from scoter import Scoter, crontab, every
from scoter.consumer.scheduler import enqueue_due_slots
from scoter.periodic import MAX_CATCH_UP, Periodic, slot_id, slot_of
from scoter.states import State
from scoter.storage.memory import MemoryStorage

UTC = dt.timezone.utc


def at(*parts: int, tz: dt.tzinfo = UTC) -> int:
    return int(dt.datetime(*parts, tzinfo=tz).timestamp())  # type: ignore[misc]


def utc(slot: int | None) -> dt.datetime | None:
    return None if slot is None else dt.datetime.fromtimestamp(slot, UTC)


# -- crontab fields ---------------------------------------------------------------------------


def test_fields_select_minutes_of_working_hours_on_weekdays() -> None:
    c = crontab(minute="*/5", hour="9-17", day_of_week="1-5")
    saturday_noon = at(2024, 6, 1, 12, 0)
    assert utc(c.following(saturday_noon)) == dt.datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    assert utc(c.latest(saturday_noon)) == dt.datetime(2024, 5, 31, 17, 55, tzinfo=UTC)
    assert utc(c.following(at(2024, 6, 3, 9, 3))) == dt.datetime(2024, 6, 3, 9, 5, tzinfo=UTC)


def test_day_of_week_counts_from_sunday_and_7_is_sunday() -> None:
    sunday = dt.datetime(2024, 6, 2, 8, 0, tzinfo=UTC)
    assert crontab(minute="0", hour="8", day_of_week="0")(sunday)
    assert crontab(minute="0", hour="8", day_of_week="7")(sunday)
    assert not crontab(minute="0", hour="8", day_of_week="1")(sunday)
    assert crontab(minute="0", hour="8", day_of_week="5-7")(sunday)


def test_day_and_day_of_week_must_both_match() -> None:
    """Huey's rule: the 13th that is a Friday, not every 13th and every Friday."""
    c = crontab(minute="0", hour="0", day="13", day_of_week="5")
    assert utc(c.following(at(2024, 1, 1))) == dt.datetime(2024, 9, 13, tzinfo=UTC)


def test_lists_ranges_and_steps() -> None:
    c = crontab(minute="0,30", hour="1-5/2")
    slots = c.slots(at(2024, 1, 1), at(2024, 1, 1, 23), 10)
    assert [(s - at(2024, 1, 1)) // 60 for s in slots] == [60, 90, 180, 210, 300, 330]
    assert crontab(day="*/10").days == frozenset({1, 11, 21, 31})


def test_a_range_that_runs_backwards_wraps_around_the_field() -> None:
    """As Huey reads it (and cron means it): 22-2 is 22, 23, 0, 1, 2; 7 is Sunday."""
    assert crontab(hour="22-2").hours == (0, 1, 2, 22, 23)
    assert crontab(hour="22-2/2").hours == (0, 2, 22)  # the step counts from 22
    assert crontab(minute="58-1").minutes == (0, 1, 58, 59)
    assert crontab(month="11-2").months == frozenset({11, 12, 1, 2})
    assert crontab(day_of_week="5-1").weekdays == frozenset({5, 6, 0, 1})
    assert crontab(day_of_week="7-2").weekdays == frozenset({0, 1, 2})
    assert crontab(day_of_week="7-3/2").weekdays == frozenset({0, 2})
    assert crontab(day_of_week="7-7").weekdays == frozenset({0})
    night = crontab(minute="0", hour="22-2")
    assert utc(night.following(at(2024, 1, 1, 2, 30))) == dt.datetime(2024, 1, 1, 22, tzinfo=UTC)
    assert utc(night.following(at(2024, 1, 1, 23, 30))) == dt.datetime(2024, 1, 2, tzinfo=UTC)


def test_month_ends_and_leap_days() -> None:
    last_day = crontab(minute="0", hour="0", day="31")
    assert utc(last_day.following(at(2024, 4, 1))) == dt.datetime(2024, 5, 31, tzinfo=UTC)
    leap = crontab(minute="0", hour="0", day="29", month="2")
    assert utc(leap.following(at(2024, 3, 1))) == dt.datetime(2028, 2, 29, tzinfo=UTC)
    assert utc(leap.latest(at(2027, 1, 1))) == dt.datetime(2024, 2, 29, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"minute": "60"}, "minute 60 is out of range: use 0-59"),
        ({"hour": "5-25"}, "hour 25 is out of range: use 0-23"),
        ({"day_of_week": "*/2"}, "cannot use \\*/n"),
        ({"day": "30", "month": "2"}, "no slot within"),
        ({"minute": "banana"}, "matches no minute"),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_bad_fields_say_what_is_wrong(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        crontab(**fields)  # type: ignore[arg-type]


def test_strict_refuses_a_piece_huey_would_ignore() -> None:
    assert crontab(minute="5,x").minutes == (5,)  # Huey's default: the piece is ignored
    with pytest.raises(ValueError, match="'x' is not \\*, \\*/n, m, m-n or m-n/s"):
        crontab(minute="5,x", strict=True)


# -- time zones ------------------------------------------------------------------------------

BERLIN = "Europe/Berlin"


def test_a_tz_crontab_follows_local_time() -> None:
    c = crontab(minute="0", hour="9", tz=BERLIN)
    assert utc(c.following(at(2024, 1, 10))) == dt.datetime(2024, 1, 10, 8, 0, tzinfo=UTC)
    assert utc(c.following(at(2024, 7, 10))) == dt.datetime(2024, 7, 10, 7, 0, tzinfo=UTC)


def test_a_wall_time_in_a_dst_gap_runs_as_far_after_the_gap() -> None:
    """31 March 2024: Berlin skips 02:00-03:00; 02:30 runs at 03:30 CEST (01:30 UTC)."""
    c = crontab(minute="30", hour="2", tz=BERLIN)
    assert utc(c.following(at(2024, 3, 30, 12))) == dt.datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert utc(c.following(at(2024, 3, 31, 1, 30))) == dt.datetime(2024, 4, 1, 0, 30, tzinfo=UTC)


def test_a_gap_slot_meeting_a_real_one_is_one_slot() -> None:
    c = crontab(minute="30", hour="2,3", tz=BERLIN)
    day = c.slots(at(2024, 3, 30, 22), at(2024, 3, 31, 12), 10)
    assert [utc(s) for s in day] == [dt.datetime(2024, 3, 31, 1, 30, tzinfo=UTC)]


def test_a_repeated_wall_time_runs_once_at_its_first_pass() -> None:
    """27 October 2024: Berlin lives 02:00-03:00 twice; 02:30 runs at the first (CEST)."""
    c = crontab(minute="30", hour="2", tz=BERLIN)
    day = c.slots(at(2024, 10, 26, 12), at(2024, 10, 27, 12), 10)
    assert [utc(s) for s in day] == [dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC)]
    hourly = crontab(minute="0", tz=BERLIN).slots(at(2024, 10, 26, 23), at(2024, 10, 27, 3), 10)
    # 00:00 UTC is 02:00 CEST; 01:00 UTC, 02:00 CET again, is no slot; 02:00 UTC is 03:00 CET
    assert [utc(s).hour for s in hourly] == [0, 2, 3]  # type: ignore[union-attr]


# -- every -----------------------------------------------------------------------------------


def test_every_counts_from_the_epoch() -> None:
    assert every(seconds=10).latest(1_000_007) == 1_000_000
    assert every(seconds=10).following(1_000_000) == 1_000_010
    assert every(dt.timedelta(hours=1)) == every(minutes=60) == every(3600)


@pytest.mark.parametrize("bad", [{"seconds": 0}, {"seconds": 1.5}, {"seconds": -5}])
def test_every_needs_whole_seconds(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        every(**bad)


# -- missed slots ----------------------------------------------------------------------------

MINUTELY = crontab()
T = at(2024, 6, 3, 12, 0)


def test_a_new_schedule_runs_its_current_slot_only_when_on_time() -> None:
    p = Periodic("p", MINUTELY)
    assert p.plan(None, T + 20) == (T, [T])
    daily = Periodic("p", crontab(minute="0", hour="3"))
    assert daily.plan(None, T) == (at(2024, 6, 3, 3), [])


def test_nothing_to_do_until_the_next_slot() -> None:
    assert Periodic("p", MINUTELY).plan(T, T + 59) is None


def test_by_default_the_latest_missed_slot_runs_once() -> None:
    assert Periodic("p", MINUTELY).plan(T - 600, T + 5) == (T, [T])


def test_slots_on_time_all_run_whatever_the_policy() -> None:
    """A tick that comes a little late (a busy host) leaves no slot out."""
    for catch_up in (None, True, False):
        p = Periodic("p", every(seconds=1), catch_up=catch_up)
        assert p.plan(T - 3, T + 0.5) == (T, [T - 2, T - 1, T])


def test_catch_up_runs_each_missed_slot_up_to_the_bound() -> None:
    p = Periodic("p", MINUTELY, catch_up=True)
    assert p.plan(T - 180, T + 5) == (T, [T - 120, T - 60, T])
    slot, slots = p.plan(T - 86400, T + 5) or (0, [])
    assert (slot, len(slots), slots[-1]) == (T, MAX_CATCH_UP, T)


def test_catch_up_false_skips_to_the_next_slot() -> None:
    p = Periodic("p", crontab(minute="0", hour="3"), catch_up=False)
    three = at(2024, 6, 3, 3)
    assert p.plan(three - 86400 * 3, three + 3600) == (three, [])
    assert p.plan(three - 86400, three + 2) == (three, [three])


# -- slot ids and the scheduler --------------------------------------------------------------


def test_a_slot_id_names_its_task_and_slot() -> None:
    assert slot_id("report", T) == "report:at:20240603T120000Z"
    assert slot_of("report", "report:at:20240603T120000Z") == dt.datetime(
        2024, 6, 3, 12, tzinfo=UTC
    )
    assert slot_of("other", "report:at:20240603T120000Z") is None
    assert slot_of("report", "a1b2c3") is None
    odd = slot_id("отчёт/daily", T)
    assert odd.endswith(":at:20240603T120000Z") and slot_of("отчёт/daily", odd) is not None


def test_consumers_ticking_together_enqueue_each_slot_once() -> None:
    storage = MemoryStorage()
    apps = [Scoter("a", storage) for _ in range(3)]
    for app in apps:  # three consumers' apps: the same task, the same schedule
        app.periodic_task(every(seconds=10), name="tick")(print)
    for now in (T + 1, T + 2, T + 11, T + 12, T + 21):
        assert sum(enqueue_due_slots(app, storage, now) for app in apps) <= 1
    assert storage.counts() == {("default", State.QUEUED): 3}
    assert storage.last_slots(["tick"]) == {"tick": T + 20}


def test_periodic_task_refuses_what_is_not_a_schedule() -> None:
    app = Scoter("a", "memory://")
    with pytest.raises(TypeError, match=r"crontab\(...\) or every\(...\)"):
        app.periodic_task("*/5 * * * *")  # type: ignore[arg-type]
