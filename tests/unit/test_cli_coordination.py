"""`scoter info` and `scoter show` on locks and limits: who holds a lock and until when; a
queued task waiting on a concurrency or rate limit says so."""

from __future__ import annotations

import socket

import pytest

from scoter.storage.base import NewTask
from scoter.storage.coordination import TaskLimit

from .test_cli import AppModule, app_module, invoke, table_rows, wide_console, workdir

__all__ = ["app_module", "wide_console", "workdir"]  # fixtures this module uses


@pytest.mark.usefixtures("wide_console")
def test_info_shows_lock_holders_and_limits(app_module: AppModule) -> None:
    app = app_module.module.app
    storage = app.storage
    storage.enqueue([NewTask(f"t{i}", "add", "default", b"[]") for i in range(3)])
    storage.set_limits([TaskLimit("add", concurrency=1), TaskLimit("boom", rate=5, per=60.0)])
    [lease] = storage.claim(["default"], 3, 30.0, "host:1:abc")
    assert storage.acquire_lock(
        "nightly", "o", ttl=None, task_id=lease.id, lease_token=lease.token, holder="task t0 (add)"
    )
    app.lock_task("manual", ttl=300).acquire()

    result = invoke("info", app_module.ref)

    assert result.exit_code == 0, result.output
    rows = {row[0]: row for row in table_rows(result.output)}
    assert rows["nightly"][1] == "task t0 (add)"
    assert "renewed with its task's lease" in rows["nightly"][3]
    assert rows["manual"][1].startswith(f"{socket.gethostname()}:")
    assert rows["add"][1:] == ["1/1", "", "wait: 1 of 1 running (concurrency limit)"]
    assert rows["boom"][1:] == ["", "0/5 per m", "run"]


@pytest.mark.usefixtures("wide_console")
def test_show_says_what_a_queued_task_waits_for_and_which_locks_a_task_holds(
    app_module: AppModule,
) -> None:
    storage = app_module.module.app.storage
    storage.enqueue([NewTask(f"t{i}", "add", "default", b"[]") for i in range(3)])
    storage.set_limits([TaskLimit("add", rate=2, per=60.0)])
    first, _ = storage.claim(["default"], 3, 30.0, "host:1:abc")
    assert storage.acquire_lock("x", "o", ttl=None, task_id=first.id, lease_token=first.token)

    waiting = invoke("show", app_module.ref, "t2")
    holding = invoke("show", app_module.ref, first.id)

    assert waiting.exit_code == 0, waiting.output
    assert "wait: rate limit 2/2 per m reached; the next starts in" in waiting.output
    assert "holds lock x until" in holding.output and "renewed with its lease" in holding.output
