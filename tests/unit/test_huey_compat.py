"""Huey's documented examples (the guide, the API reference, the signals page), each run
unchanged but for the import, asserting the documented behaviour on scoter.huey.

Where scoter differs on purpose (docs/from-huey.md, "Where scoter differs"), the test says so.
Tests of features built on scoter's revocation, locks, rate limits and pipelines skip, naming
the scoter API they wait for, until this scoter has it.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from scoter import Scoter
from scoter.huey import CancelExecution, MemoryHuey, RetryTask, SqliteHuey, crontab
from scoter.huey.exceptions import ResultTimeout, TaskException
from scoter.huey.results import ResultGroup
from scoter.huey.schedules import FunctionSchedule
from scoter.huey.signals import (
    SIGNAL_CANCELED,
    SIGNAL_COMPLETE,
    SIGNAL_ENQUEUED,
    SIGNAL_ERROR,
    SIGNAL_EXECUTING,
    SIGNAL_RETRYING,
)
from scoter.states import State
from scoter.task import Message


def needs(attribute: str, owner: object = Scoter) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not hasattr(owner, attribute),
        reason=f"needs scoter's {getattr(owner, '__name__', owner)}.{attribute}",
    )


@pytest.fixture
def huey() -> MemoryHuey:
    return MemoryHuey("test-app", immediate=True)


@pytest.fixture
def sqlite_huey(tmp_path: Path) -> SqliteHuey:
    return SqliteHuey("test-app", filename=str(tmp_path / "huey.db"))


# -- the guide: "At a glance", results ----------------------------------------------------------


def test_calling_a_task_returns_a_result_that_is_callable(huey: MemoryHuey) -> None:
    @huey.task()
    def add_numbers(a: int, b: int) -> int:
        return a + b

    res = add_numbers(1, 2)
    assert repr(res) == f"<Result: task {res.id}>"
    assert res() == 3
    assert res.get() == 3  # the Result object keeps the value it read


def test_a_result_is_read_once_unless_preserved(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    kept = add(1, 2)
    assert kept.get(preserve=True) == 3
    assert huey.result(kept.id, preserve=True) == 3
    assert huey.result(kept.id) == 3  # read, and gone from the store
    assert huey.result(kept.id) is None
    assert huey.result_count() == 0


def test_results_false_returns_no_handle() -> None:
    huey = MemoryHuey("no-results", results=False, immediate=True)

    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) is None


def test_schedule_with_delay_waits(sqlite_huey: SqliteHuey) -> None:
    @sqlite_huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    res = add.schedule((2, 3), delay=10)
    assert res is not None and res(False) is None  # documented: not ready, no blocking
    assert [t.id for t in sqlite_huey.scheduled()] == [res.id]
    assert sqlite_huey.scheduled_count() == 1
    eta = sqlite_huey.scheduled()[0].eta
    assert eta is not None and eta > dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def test_blocking_get_times_out(sqlite_huey: SqliteHuey) -> None:
    @sqlite_huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    res = add(1, 2)
    assert res is not None
    with pytest.raises(ResultTimeout):
        res.get(blocking=True, timeout=0.1)


def test_map_returns_a_result_group(huey: MemoryHuey) -> None:
    @huey.task()
    def square(n: int) -> int:
        return n * n

    group = square.map(range(4))
    assert isinstance(group, ResultGroup) and len(group) == 4
    assert group.get() == [0, 1, 4, 9]


def test_call_local_runs_the_function_here(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    assert add.call_local(3, 4) == 7
    assert huey.result_count() == 0


# -- the guide: retries, errors, context ------------------------------------------------------


def test_retries_then_task_exception(huey: MemoryHuey) -> None:
    calls: list[int] = []

    @huey.task(retries=2)
    def flaky() -> None:
        calls.append(1)
        raise ValueError("nope")

    res = flaky()
    assert len(calls) == 3  # the first run and two retries
    with pytest.raises(TaskException) as raised:
        res.get()
    assert raised.value.metadata["error"] == "ValueError('nope')"  # Huey's: the repr
    assert raised.value.metadata["task_id"] == res.id


def test_retry_task_runs_again_without_spending_retries(huey: MemoryHuey) -> None:
    calls: list[int] = []

    @huey.task()
    def eventually() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetryTask("not yet")
        return "done"

    assert eventually().get() == "done"
    assert len(calls) == 3


def test_cancel_execution_without_retry_is_not_retried(huey: MemoryHuey) -> None:
    calls: list[int] = []

    @huey.task(retries=3)
    def give_up() -> None:
        calls.append(1)
        raise CancelExecution(retry=False)

    res = give_up()
    assert len(calls) == 1
    info = huey.app.storage.get(res.id)
    assert info is not None and info.reason == "canceled"
    with pytest.raises(TaskException):
        res.get()


def test_context_task_gets_task_argument(huey: MemoryHuey) -> None:
    @huey.task(context=True)
    def whoami(task: Any = None) -> tuple[str, str]:
        return task.id, task.name

    res = whoami()
    assert res.get() == (res.id, "whoami")


def test_context_task_decorator_enters_the_object(huey: MemoryHuey) -> None:
    entered: list[str] = []

    class Resource:
        def __enter__(self) -> str:
            entered.append("in")
            return "conn"

        def __exit__(self, *exc: object) -> None:
            entered.append("out")

    @huey.context_task(Resource(), as_argument=True)
    def use(conn: str, n: int) -> str:
        return f"{conn}:{n}"

    assert use(5).get() == "conn:5"
    assert entered == ["in", "out"]


def test_pickle_is_the_default_serializer(huey: MemoryHuey) -> None:
    @huey.task()
    def echo(value: Any) -> Any:
        return value

    point = Point(1, 2)
    assert echo(point).get() == point


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


# -- hooks and signals ------------------------------------------------------------------------


def test_pre_execute_cancel_execution_skips_the_task(huey: MemoryHuey) -> None:
    ran: list[int] = []
    heard: list[str] = []

    @huey.pre_execute()
    def no_odd(task: Any) -> None:
        if task.args[0] % 2:
            raise CancelExecution()

    @huey.signal(SIGNAL_CANCELED)
    def canceled(signal: str, task: Any) -> None:
        heard.append(task.id)

    @huey.task()
    def even(n: int) -> int:
        ran.append(n)
        return n

    assert even(2).get() == 2
    res = even(3)
    assert ran == [2]
    assert heard == [res.id]
    assert huey.unregister_pre_execute("no_odd")


def test_post_execute_sees_value_and_exception(huey: MemoryHuey) -> None:
    seen: list[tuple[str, Any, Any]] = []

    @huey.post_execute()
    def record(task: Any, task_value: Any, exc: Any) -> None:
        seen.append((task.name, task_value, type(exc).__name__ if exc else None))

    @huey.task()
    def ok() -> int:
        return 1

    @huey.task()
    def bad() -> None:
        raise KeyError("x")

    ok()
    bad()
    assert seen == [("ok", 1, None), ("bad", None, "KeyError")]


def test_signals_with_the_receiver_signature(huey: MemoryHuey) -> None:
    heard: list[tuple[str, str, tuple[Any, ...]]] = []

    @huey.signal()
    def every(signal: str, task: Any, *extra: Any) -> None:
        heard.append((signal, task.name, extra))

    state: list[int] = []

    @huey.task(retries=1)
    def fails_once() -> str:
        state.append(1)
        if len(state) == 1:
            raise ValueError("first")
        return "ok"

    fails_once()
    names = [name for name, _, _ in heard]
    assert names[:3] == [SIGNAL_ENQUEUED, SIGNAL_EXECUTING, SIGNAL_ERROR]
    assert SIGNAL_RETRYING in names and names[-1] == SIGNAL_COMPLETE
    error_extra = next(extra for name, _, extra in heard if name == SIGNAL_ERROR)
    assert isinstance(error_extra[0], ValueError)


def test_on_startup_and_on_shutdown_run_in_each_worker(tmp_path: Path) -> None:
    huey = SqliteHuey("hooks", filename=str(tmp_path / "h.db"))
    started: list[str] = []
    stopped: list[str] = []

    @huey.on_startup()
    def up() -> None:
        started.append(threading.current_thread().name)

    @huey.on_shutdown()
    def down() -> None:
        stopped.append(threading.current_thread().name)

    consumer = huey.create_consumer(workers=2)
    runner = threading.Thread(target=consumer.run)
    runner.start()
    consumer.scoter.inflight.wait_below(1, 0.5)
    consumer.stop(graceful=True)
    runner.join(10)
    assert len(started) == 2 and sorted(started) == sorted(stopped)


# -- driving tasks by hand, inspection ----------------------------------------------------------


def test_enqueue_dequeue_execute(sqlite_huey: SqliteHuey) -> None:
    @sqlite_huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    res = sqlite_huey.enqueue(add.s(2, 2))
    assert len(sqlite_huey) == 1 and sqlite_huey.pending()[0].args == (2, 2)
    task = sqlite_huey.dequeue()
    assert task is not None and task.id == res.id and len(sqlite_huey) == 0
    assert sqlite_huey.execute(task) == 4
    assert sqlite_huey.all_results() == {res.id: 4}
    assert res.get() == 4
    assert sqlite_huey.dequeue() is None


def test_flush_empties_the_storage(sqlite_huey: SqliteHuey) -> None:
    @sqlite_huey.task()
    def noop() -> None:
        return None

    noop()
    noop.schedule(delay=60)
    sqlite_huey.flush()
    assert len(sqlite_huey) == 0 and sqlite_huey.scheduled_count() == 0


def test_switching_immediate_on_uses_memory(sqlite_huey: SqliteHuey) -> None:
    @sqlite_huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    add(1, 1)  # stays queued in the SQLite file
    sqlite_huey.immediate = True
    assert sqlite_huey.app.storage.url.startswith("memory")
    assert add(2, 2).get() == 4
    sqlite_huey.immediate = False
    assert sqlite_huey.app.storage.url.startswith("sqlite") and len(sqlite_huey) == 1


# -- periodic tasks, storage options, serializers ---------------------------------------------


def test_periodic_task_is_a_scoter_schedule(huey: MemoryHuey) -> None:
    @huey.periodic_task(crontab(minute="0", hour="3"))
    def nightly_backup() -> None:
        return None

    periodic = huey.app.periodic[nightly_backup.scoter_name]
    assert periodic.schedule.following(0) == 3 * 3600
    assert crontab(minute="*/5")(dt.datetime(2024, 1, 1, 12, 5))


def test_periodic_task_with_a_function_runs_on_its_minutes(huey: MemoryHuey) -> None:
    def every_ten(when: dt.datetime) -> bool:
        return when.minute % 10 == 0

    @huey.periodic_task(every_ten)
    def tick() -> None:
        return None

    schedule = huey.app.periodic[tick.scoter_name].schedule
    assert isinstance(schedule, FunctionSchedule)
    assert schedule.latest(3600 + 25 * 60) == 3600 + 20 * 60
    assert schedule.following(3600) == 3600 + 600


@pytest.mark.parametrize(
    ("cls_name", "options", "url"),
    [
        ("RedisHuey", {"host": "redis.local", "port": 6380, "db": 2},
         "redis://redis.local:6380/2"),
        ("RedisHuey", {"url": "redis://h:6379/1"}, "redis://h:6379/1"),
        ("PriorityRedisExpireHuey", {"host": "r"}, "redis://r:6379/0"),
        ("PostgresHuey", {"dsn": "postgresql://u@db/app"}, "postgresql://u@db/app"),
        ("SqliteHuey", {"filename": "x.db", "fsync": True}, "sqlite:///x.db?synchronous=full"),
        ("MemoryHuey", {}, "memory://"),
        ("BlackHoleHuey", {}, "memory://"),
    ],
)  # fmt: skip
def test_constructor_options_name_the_storage(cls_name: str, options: Any, url: str) -> None:
    import scoter.huey as api

    huey = getattr(api, cls_name)("app", **options)
    assert huey.url == url
    assert huey.app.default_queue == "app"


def test_signed_serializer_turns_on_signing() -> None:
    from scoter.huey.serializer import SignedSerializer

    huey = MemoryHuey("s", serializer=SignedSerializer(secret="x" * 32), immediate=True)
    assert huey.app.signer is not None

    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2).get() == 3


def test_compressed_pickle_round_trips() -> None:
    huey = MemoryHuey("z", compression=True, use_zlib=True, immediate=True)

    @huey.task()
    def echo(value: Any) -> Any:
        return value

    assert echo({"a": (1, 2)}).get() == {"a": (1, 2)}


def test_task_names_are_module_qualified(huey: MemoryHuey) -> None:
    @huey.task(name="renamed")
    def fn() -> None:
        return None

    assert fn.scoter_name == f"{__name__}.renamed"
    assert fn.scoter_name in huey.app.tasks


def test_a_done_record_is_deleted_when_read(sqlite_huey: SqliteHuey) -> None:
    @sqlite_huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    res = add(2, 3)
    task = sqlite_huey.dequeue()
    assert task is not None
    sqlite_huey.execute(task)
    assert sqlite_huey.app.storage.get(res.id) is not None
    assert res() == 5 and res() == 5
    assert sqlite_huey.app.storage.get(res.id) is None


# -- built on scoter's revocation, locks, rate limits and pipelines -----------------------------


@needs("revoke_by_id")
def test_revoke_and_restore_a_result(sqlite_huey: SqliteHuey) -> None:
    @sqlite_huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    res = add(1, 2)
    res.revoke()
    assert res.is_revoked()
    # As in Huey, it stays queued: a consumer that takes it ends it revoked instead of running it
    assert sqlite_huey.app.storage.get(res.id).state is State.QUEUED  # type: ignore[union-attr]
    assert res.restore()
    assert not res.is_revoked()
    assert len(sqlite_huey) == 1


@needs("revoke_all")
def test_revoke_a_task_until_restored(huey: MemoryHuey) -> None:
    ran: list[int] = []

    @huey.task()
    def work(n: int) -> None:
        ran.append(n)

    work.revoke()
    assert work.is_revoked()
    work(1)
    work.restore()
    assert not work.is_revoked()
    work(2)
    assert ran == [2]


@needs("lock_task")
def test_lock_task_raises_when_held(huey: MemoryHuey) -> None:
    from scoter.huey.exceptions import TaskLockedException

    with huey.lock_task("report"):
        assert huey.is_locked("report")
        with pytest.raises(TaskLockedException), huey.lock_task("report"):
            pass
    assert not huey.is_locked("report")


@needs("rate_limit")
def test_rate_limit_raises_past_its_limit(huey: MemoryHuey) -> None:
    from scoter.huey.exceptions import RateLimitExceeded

    limit = huey.rate_limit("api", 2, 60)
    with limit, limit:
        pass
    with pytest.raises(RateLimitExceeded), limit:
        pass


@needs("then", Message)
def test_pipeline_passes_each_result_on(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    pipeline = add.s(1, 2).then(add, 3).then(add, 4)
    results = huey.enqueue(pipeline)
    assert isinstance(results, ResultGroup)
    assert results.get(blocking=True, timeout=5) == [3, 6, 10]


@needs("then", Message)
def test_pipeline_passes_the_result_after_the_steps_own_arguments_as_huey_does(
    huey: MemoryHuey,
) -> None:
    @huey.task()
    def pair(a: object, b: object) -> tuple[object, object]:
        return (a, b)

    @huey.task()
    def describe(*args: object, **kwargs: object) -> str:
        return f"{args} {sorted(kwargs.items())}"

    @huey.task()
    def keywords() -> dict[str, int]:
        return {"x": 1}

    spread = huey.enqueue(pair.s("a", "b").then(describe, "own"))
    assert spread.get(blocking=True, timeout=5)[-1] == "('own', 'a', 'b') []"
    merged = huey.enqueue(keywords.s().then(describe, "own"))
    assert merged.get(blocking=True, timeout=5)[-1] == "('own',) [('x', 1)]"


def test_a_pipeline_step_after_a_dead_step_raises_that_failure_instead_of_waiting(
    tmp_path: Path,
) -> None:
    huey = SqliteHuey("dead-midway", filename=str(tmp_path / "q.db"))

    @huey.task()
    def below_zero(n: int) -> int:
        if n < 0:
            raise ValueError(f"{n} is below zero")
        return n - 1

    first, second, third = huey.enqueue(below_zero.s(-1).then(below_zero).then(below_zero))
    task = huey.dequeue()
    assert task is not None and huey.execute(task) is None
    for later in (second, third):
        with pytest.raises(TaskException) as caught:
            later.get(blocking=True, timeout=5)
        assert caught.value.metadata["task_id"] == first.id
    assert huey.dequeue() is None
