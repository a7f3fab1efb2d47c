"""The scheduler sleeps until the earliest thing due — an eta in storage, a periodic slot, a
retry this consumer scheduled — instead of ticking every second, and promotes it on time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from scoter import Scoter, State, every
from scoter.consumer.scheduler import Scheduler
from scoter.periodic import slot_id
from scoter.storage.base import NewTask, Storage

ON_TIME_S = 0.25
"""How late a promotion may come here (milliseconds on an idle machine; the old tick: 1 s)."""


@pytest.fixture
def started() -> Iterator[Callable[[Scheduler], Scheduler]]:
    running: list[Scheduler] = []

    def start(scheduler: Scheduler) -> Scheduler:
        scheduler.start()
        running.append(scheduler)
        return scheduler

    yield start
    for scheduler in running:
        scheduler.stop()


def _promoted_at(storage: Storage, task_id: str, timeout: float = 5.0) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = storage.get(task_id)
        if info is not None and info.state is State.QUEUED:
            return time.time()
        time.sleep(0.002)
    raise AssertionError(f"{task_id} was not promoted within {timeout} s")


def _scheduled(storage: Storage, task_id: str, delay: float) -> float:
    eta = time.time() + delay
    assert storage.enqueue([NewTask(task_id, "app.work", "default", b"{}", eta=eta)]) == 1
    return eta


def test_an_eta_stored_before_it_sleeps_is_promoted_on_time(
    storage: Storage, started: Callable[[Scheduler], Scheduler]
) -> None:
    eta = _scheduled(storage, "a", 0.4)
    started(Scheduler(storage, interval=10))
    late = _promoted_at(storage, "a") - eta
    assert 0 <= late < ON_TIME_S


def test_an_eta_another_process_stores_while_it_sleeps_is_promoted_on_time(
    storage: Storage, started: Callable[[Scheduler], Scheduler]
) -> None:
    started(Scheduler(storage, interval=10))
    time.sleep(0.05)  # asleep, with nothing due
    eta = _scheduled(storage, "b", 0.3)  # found by its next look (WATCH_S)
    late = _promoted_at(storage, "b") - eta
    assert 0 <= late < ON_TIME_S


def test_a_nudge_wakes_it_for_a_retry(
    storage: Storage, started: Callable[[Scheduler], Scheduler]
) -> None:
    scheduler = started(Scheduler(storage, interval=10, watch=10))  # only the nudge wakes it
    time.sleep(0.05)
    eta = _scheduled(storage, "c", 0.2)
    scheduler.nudge(eta)
    late = _promoted_at(storage, "c") - eta
    assert 0 <= late < ON_TIME_S


def test_a_periodic_slot_is_enqueued_at_its_time(
    storage: Storage, started: Callable[[Scheduler], Scheduler]
) -> None:
    app = Scoter("t", storage)

    @app.periodic_task(every(seconds=1))
    def tick() -> None: ...

    time.sleep(1 - time.time() % 1 + 0.2)  # 0.2 s into a second: its slot is enqueued first
    started(Scheduler(storage, interval=10, app=app))
    slot = int(time.time()) + 1
    task_id = slot_id("tick", slot)
    deadline = slot + 2
    while storage.get(task_id) is None and time.time() < deadline:
        time.sleep(0.002)
    assert 0 <= time.time() - slot < ON_TIME_S
