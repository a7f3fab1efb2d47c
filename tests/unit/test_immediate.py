"""Immediate mode as Huey has it: switching it on swaps in memory storage, and retries run."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoter import Scoter, State
from scoter.storage.memory import MemoryStorage


def test_setting_immediate_swaps_in_memory_storage_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'real.db'}"
    app = Scoter("imm", url)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    real = app.storage
    app.immediate = True
    assert isinstance(app.storage, MemoryStorage)
    assert "memory://" in repr(app)
    assert add(1, 2).get() == 3, "ran in the caller's thread"
    assert real.counts() == {}, "nothing reached the real storage"

    app.immediate = False
    assert app.storage is real
    result = add(2, 3)
    assert real.get(result.id) is not None and real.get(result.id).state is State.QUEUED
    real.close()


def test_each_switch_to_immediate_starts_from_an_empty_storage() -> None:
    app = Scoter("imm", "memory://")

    @app.task
    def noop() -> None:
        pass

    app.immediate = True
    noop()
    first = app.storage
    app.immediate = True  # already on: the same storage
    assert app.storage is first
    app.immediate = False
    app.immediate = True
    assert app.storage is not first and app.storage.counts() == {}


def test_immediate_given_with_a_url_runs_on_that_storage(tmp_path: Path) -> None:
    app = Scoter("imm", f"sqlite:///{tmp_path / 'x.db'}", immediate=True)
    assert not isinstance(app.storage, MemoryStorage)
    app.storage.close()


@pytest.mark.parametrize("backoff", [1.0, 2.0])
def test_retries_with_a_delay_run_in_immediate_mode(backoff: float) -> None:
    app = Scoter("imm", immediate=True)
    calls: list[int] = []

    @app.task(retries=3, retry_delay=60, retry_backoff=backoff)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ValueError("not yet")
        return "done"

    result = flaky()
    assert len(calls) == 3
    assert result.get() == "done"
    info = app.storage.get(result.id)
    assert info is not None and (info.state, info.errors) == (State.DONE, 2)


def test_a_retry_with_a_delay_outside_immediate_mode_still_waits() -> None:
    app = Scoter("imm", "memory://")

    @app.task(retries=1, retry_delay=60)
    def fails() -> None:
        raise ValueError("no")

    task_id = fails().id
    assert app.run_pending() == 1
    info = app.storage.get(task_id)
    assert info is not None and info.state is State.SCHEDULED


def test_a_task_scheduled_with_a_delay_waits_in_immediate_mode() -> None:
    app = Scoter("imm", immediate=True)

    @app.task
    def later() -> int:
        return 1

    result = later.schedule(delay=60)
    assert app.storage.get(result.id).state is State.SCHEDULED
