"""Huey's public API beyond tasks and results, on scoter.huey: crontab shortcuts, the
key-value calls, serialize_task, read_periodic, rate_limit objects, the task registry, and
the helper modules (huey.utils, huey.contrib.helpers)."""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import pytest

from scoter.exceptions import DecodeError
from scoter.huey import Huey, MemoryHuey, SqliteHuey, crontab
from scoter.huey.constants import EmptyData
from scoter.huey.contrib.helpers import RedisSemaphore
from scoter.huey.exceptions import HueyException, RateLimitExceeded
from scoter.huey.serializer import Serializer, SignedSerializer
from scoter.huey.utils import FileLock


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


# -- key-value -------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def huey(request: pytest.FixtureRequest, tmp_path: Path) -> Huey:
    if request.param == "memory":
        return MemoryHuey("kv-app")
    return SqliteHuey("kv-app", filename=str(tmp_path / "huey.db"))


def test_put_get_pops_unless_peek(huey: Huey) -> None:
    for value in ("v1", 1, 0, None, [0, 1], (2, 3), {"k": "v"}, set("abc")):
        huey.put("key", value)
        assert huey.get("key") == value
    huey.put("key", "kept")
    assert huey.get("key", peek=True) == "kept" and huey.get("key") == "kept"
    assert huey.get("key") is None and huey.get_raw("key") is EmptyData
    assert huey.put_if_empty("once", 1) and not huey.put_if_empty("once", 2)
    assert huey.get("once") == 1
    huey.put("gone", 1)
    assert huey.delete("gone") and not huey.delete("gone")


def test_flush_empties_the_key_value_entries_too(huey: Huey) -> None:
    @huey.task()
    def noop() -> None: ...

    noop()
    huey.put("state", {"step": 3})
    huey.flush()
    assert len(huey) == 0 and huey.get("state") is None


def test_flush_locks_frees_a_lock_made_by_hand_as_huey_stores_it(huey: Huey) -> None:
    huey.put_if_empty("kv-app.lock.manual", "1")
    assert huey.flush_locks("manual", "other") == {"manual"}
    assert huey.put_if_empty("kv-app.lock.manual", "1")


# -- tasks as bytes, the registry, schedules by hand -----------------------------------------


def test_serialize_task_round_trips_and_a_signing_app_refuses_tampered_bytes() -> None:
    plain = MemoryHuey("plain")
    signing = MemoryHuey("signed", serializer=SignedSerializer(secret="s" * 32))
    for h in (plain, signing):
        task = h.task(retries=1)(_double).s(2, key="v")
        again = h.deserialize_task(h.serialize_task(task))
        assert again == task and again.args == (2,) and again.kwargs == {"key": "v"}
        assert again.retries == 1
    data = signing.serialize_task(signing.wrappers[f"{__name__}._double"].s(3))
    with pytest.raises(DecodeError):
        signing.deserialize_task(data[:-1] + b"x")
    with pytest.raises(DecodeError):
        signing.deserialize_task(plain.serialize_task(plain.wrappers[f"{__name__}._double"].s(3)))


def _double(n: int, key: str = "") -> int:
    return 2 * n


def test_registry_finds_tasks_by_name_and_refuses_an_unregistered_one() -> None:
    h = MemoryHuey("reg")
    wrapper = h.task()(_double)
    with pytest.raises(ValueError, match="same identifier"):
        h.task()(_double)
    message = h._registry.create_message(wrapper.s(1))
    assert message.name == f"{__name__}._double" and message.args == (1,)
    assert wrapper.unregister()
    with pytest.raises(HueyException):
        h._registry.create_task(message)


def test_read_periodic_and_read_schedule() -> None:
    h = MemoryHuey("sched")

    def quarter() -> None: ...

    def nightly() -> None: ...

    h.periodic_task(crontab(minute="*/15"), name="quarter")(quarter)
    h.periodic_task(crontab(minute="0", hour="3"), name="nightly")(nightly)
    names = [t.name for t in h.read_periodic(dt.datetime(2000, 1, 1, 3, 0))]
    assert names == ["quarter", "nightly"]
    assert [t.name for t in h.read_periodic(dt.datetime(2000, 1, 1, 3, 1))] == []

    wrapper = h.task()(_double)
    eta = dt.datetime.now() + dt.timedelta(seconds=60)
    result = wrapper.schedule((5,), eta=eta)
    assert result is not None
    assert h.read_schedule(eta - dt.timedelta(seconds=1)) == []
    assert [t.id for t in h.read_schedule(eta)] == [result.id]
    assert h.scheduled_count() == 0 and h.pending_count() == 1, "queued, not lost"


# -- rate limits, semaphores, file locks, serializers ----------------------------------------


def test_rate_limit_acquire_and_reset(huey: Huey) -> None:
    limit = huey.rate_limit("api", limit=1, per=60, retry=False)
    limit.acquire()
    with pytest.raises(RateLimitExceeded) as caught:
        limit.acquire()
    assert caught.value.key == "api" and not caught.value.retry
    limit.reset()
    limit.acquire()


def test_redis_semaphore_runs_on_any_storage_that_keeps_locks(tmp_path: Path) -> None:
    h = SqliteHuey("sem", filename=str(tmp_path / "huey.db"))
    semaphore = RedisSemaphore(h, "slots", 2)
    first, second = semaphore.acquire(), semaphore.acquire()
    assert first and second and semaphore.acquire() is None
    assert semaphore.acquire(second) == second, "a holder keeps its slot"
    assert semaphore.release(second) == 1 and semaphore.release(second) == 0
    assert semaphore.renew(first) and not semaphore.renew("nobody")
    assert semaphore.acquire() is not None


def test_file_lock_keeps_its_file_and_excludes_another_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "locks" / ".lock")
    with FileLock(path):
        inode = os.stat(path).st_ino
        FileLock(path)
        assert os.stat(path).st_ino == inode
        taken = threading.Event()

        def other() -> None:
            with FileLock(path):
                taken.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not taken.wait(0.2)
    thread.join(5)
    assert taken.is_set()


def test_a_compressed_serializer_reads_uncompressed_data() -> None:
    for use_zlib in (False, True):
        data = Serializer().serialize({"a": 1})
        assert Serializer(compression=True, use_zlib=use_zlib).deserialize(data) == {"a": 1}
