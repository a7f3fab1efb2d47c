"""Huey's public API beyond tasks and results, on scoter.huey: crontab shortcuts, the
key-value calls, serialize_task, read_periodic, rate_limit objects, the task registry, and
the helper modules (huey.utils, huey.contrib.helpers)."""

from __future__ import annotations

import datetime as dt

from scoter.huey import crontab


def test_crontab_shortcuts_take_fields_too() -> None:
    hourly = crontab.hourly()  # type: ignore[attr-defined]
    assert hourly(dt.datetime(2026, 4, 1, 5)) and not hourly(dt.datetime(2026, 4, 1, 5, 1))
    daily = crontab.daily()  # type: ignore[attr-defined]
    assert daily(dt.datetime(2026, 4, 2)) and not daily(dt.datetime(2026, 4, 2, 1))
    mondays = crontab.daily(day_of_week="1")  # type: ignore[attr-defined]
    assert mondays(dt.datetime(2026, 4, 6)) and not mondays(dt.datetime(2026, 4, 7))


def test_crontab_ranges_wrap_around_as_in_huey() -> None:
    night = crontab(minute="0", hour="22-2", strict=True)
    assert [h for h in range(24) if night(dt.datetime(2011, 1, 1, h))] == [0, 1, 2, 22, 23]
