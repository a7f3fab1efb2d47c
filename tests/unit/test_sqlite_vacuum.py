"""A SQLite file gives the space of deleted tasks back: a new file as maintenance deletes them
(auto_vacuum=INCREMENTAL, `shrink`), a file made before that with `scoter vacuum`."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from scoter.cli import cli
from scoter.states import State
from scoter.storage.base import Ack, NewTask
from scoter.storage.sqlite import SQLiteStorage

TASKS = 3000
PAYLOAD = b"x" * 1000
INCREMENTAL = 2


def _pages(path: Path) -> tuple[int, int, int]:
    """The file's (auto_vacuum mode, pages, free pages), as another process sees them."""
    with sqlite3.connect(path) as db:
        mode, pages, free = (
            db.execute(f"PRAGMA {pragma}").fetchone()[0]
            for pragma in ("auto_vacuum", "page_count", "freelist_count")
        )
    db.close()
    return mode, pages, free


def _done(storage: SQLiteStorage, result_ttl: float | None) -> None:
    """TASKS done tasks of PAYLOAD bytes, their results kept `result_ttl` seconds."""
    storage.enqueue([NewTask(uuid.uuid4().hex, "t", "q", PAYLOAD) for _ in range(TASKS)])
    leases = storage.claim(["q"], TASKS, 60, "c")
    acks = [Ack(lease.token, b"result", result_ttl) for lease in leases]
    assert all(storage.ack_many_and_claim(acks, ["q"], 0, 60, "c")[0])


def test_a_new_file_gives_back_the_space_of_expired_results(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    storage = SQLiteStorage(str(path))
    _done(storage, 0.0)
    mode, full, _ = _pages(path)
    assert mode == INCREMENTAL

    assert storage.expire_results(time.time()) == TASKS

    _, pages, free = _pages(path)
    assert free == 0 and pages < full / 4, (full, pages)
    storage.close()


def test_purge_gives_the_space_back_too(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    storage = SQLiteStorage(str(path))
    _done(storage, None)
    _, full, _ = _pages(path)

    assert storage.purge(State.DONE) == TASKS

    _, pages, free = _pages(path)
    assert free == 0 and pages < full / 4, (full, pages)
    storage.close()


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    """A file whose first page was written before scoter set auto_vacuum (as older scoters
    did), holding TASKS expired results."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
    db.close()
    storage = SQLiteStorage(str(path))
    _done(storage, 0.0)
    storage.close()
    return path


@pytest.fixture
def app_ref(tmp_path: Path, old_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"vacuumapp_{uuid.uuid4().hex[:10]}"
    source = f'from scoter import Scoter\n\napp = Scoter("v", "sqlite:///{old_file}")\n'
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield f"{name}:app"
    sys.modules.pop(name, None)


def test_an_old_file_keeps_its_free_pages_until_scoter_vacuum(old_file: Path, app_ref: str) -> None:
    storage = SQLiteStorage(str(old_file))
    assert storage.expire_results(time.time()) == TASKS
    storage.close()
    mode, full, free = _pages(old_file)
    assert mode == 0 and free > full / 2  # reused by later writes, never given back

    result = CliRunner().invoke(cli, ["vacuum", app_ref])

    assert result.exit_code == 0, result.output
    assert "MiB before" in result.output
    mode, pages, free = _pages(old_file)
    assert (mode, free) == (INCREMENTAL, 0) and pages < full / 4, (full, pages)
    assert old_file.stat().st_size < full * 4096 / 4


def test_vacuum_of_a_server_backend_says_it_needs_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"memoryapp_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(
        'from scoter import Scoter\n\napp = Scoter("m", "memory://")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(cli, ["vacuum", f"{name}:app"])
    sys.modules.pop(name, None)

    assert result.exit_code == 0, result.output
    assert "needs no vacuum" in result.output
