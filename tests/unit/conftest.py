"""Fixtures of the unit tests: real storages (memory, SQLite in tmp_path), never mocks."""

from __future__ import annotations

import faulthandler
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scoter.storage.base import Storage
from scoter.storage.memory import MemoryStorage
from scoter.storage.sqlite import SQLiteStorage

WATCHDOG_S = 60.0
"""No unit test takes a second; one that runs this long is stuck (a retry loop, a get())."""


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    """Turn a hang into a crash that shows where each thread was, instead of waiting forever."""
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True, file=sys.__stderr__)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh storage of each embedded backend."""
    opened: Storage = (
        MemoryStorage() if request.param == "memory" else SQLiteStorage(str(tmp_path / "t.db"))
    )
    yield opened
    opened.close()


class Recorder:
    """A signal receiver that keeps `(signal, task ref, extra)` of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, tuple[Any, ...]]] = []

    def __call__(self, name: str, task: Any, *extra: Any) -> None:
        self.calls.append((name, task, extra))

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def extras(self, name: str) -> list[tuple[Any, ...]]:
        return [extra for n, _, extra in self.calls if n == name]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
