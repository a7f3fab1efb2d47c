"""`scoter list`, `scoter revoke`, `scoter restore`, and the dead reasons `info` counts."""

from __future__ import annotations

import json

import pytest

from scoter import State

from .test_cli import AppModule, invoke, table_rows
from .test_cli import app_module as app_module  # the fixtures this file uses
from .test_cli import wide_console as wide_console
from .test_cli import workdir as workdir


@pytest.mark.usefixtures("wide_console")
def test_list_by_state_and_task(app_module: AppModule) -> None:
    mod = app_module.module
    adds = [mod.add(1, 2).id, mod.add(3, 4).id]
    boom = mod.boom(1).id
    later = mod.add.schedule((5, 6), delay=3600).id
    result = invoke("list", app_module.ref)
    assert result.exit_code == 0, result.output
    assert [row[0] for row in table_rows(result.output)] == [*adds, boom]
    result = invoke("list", app_module.ref, "--task", "boom")
    assert [row[:3] for row in table_rows(result.output)] == [[boom, "boom", "default"]]
    result = invoke("list", app_module.ref, "--state", "scheduled")
    assert [row[0] for row in table_rows(result.output)] == [later]
    assert "no running tasks" in invoke("list", app_module.ref, "--state", "running").output


def test_list_as_json(app_module: AppModule) -> None:
    mod = app_module.module
    mod.boom(1)
    mod.app.run_pending()
    result = invoke("list", app_module.ref, "--state", "dead", "--json")
    assert result.exit_code == 0, result.output
    [task] = json.loads(result.output)["dead"]
    assert task["name"] == "boom" and task["state"] == "dead" and task["reason"] == "error"
    assert "kaboom 1" in task["error"] and task["attempts"] == 1
    assert json.loads(invoke("list", app_module.ref, "--json").output) == {"queued": []}


@pytest.mark.usefixtures("wide_console")
def test_revoke_and_restore_by_id(app_module: AppModule) -> None:
    mod = app_module.module
    queued, done = mod.add(1, 2), mod.add(3, 4)
    mod.app.run_pending()
    queued = mod.add(5, 6)
    result = invoke("revoke", app_module.ref, queued.id, done.id)
    assert result.exit_code == 0, result.output
    assert f"{queued.id}: revoked (queued)" in result.output
    assert f"{done.id}: not live: left as it is" in result.output
    assert queued.state is State.DEAD and queued.is_revoked()
    info = invoke("info", app_module.ref)
    assert "dead by reason: revoked 1" in info.output
    listed = invoke("list", app_module.ref, "--state", "dead")
    assert [row[0] for row in table_rows(listed.output)] == [queued.id]
    assert "revoked" in table_rows(listed.output)[0]
    result = invoke("restore", app_module.ref, queued.id)
    assert result.exit_code == 0 and "restored 1 task(s)" in result.output
    assert queued.state is State.QUEUED


def test_revoke_and_restore_a_task_name(app_module: AppModule) -> None:
    mod = app_module.module
    result = invoke("revoke", app_module.ref, "--task", "add", "--once")
    assert result.exit_code == 0, result.output
    assert "add: its next run revoked" in result.output
    assert mod.add.is_revoked()
    assert "revocation lifted" in invoke("restore", app_module.ref, "--task", "add").output
    assert "not revoked" in invoke("restore", app_module.ref, "--task", "add").output
    result = invoke("revoke", app_module.ref, "--task", "add", "--until", "60")
    assert "every run for 60 s revoked" in result.output
    assert mod.add.is_revoked()


@pytest.mark.parametrize(
    "args",
    [(), ("some-id", "--task", "add"), ("some-id", "--once"), ("--task", "bad name")],
)
def test_revoke_needs_ids_or_a_good_task_name(app_module: AppModule, args: tuple[str, ...]) -> None:
    result = invoke("revoke", app_module.ref, *args)
    assert result.exit_code == 2
    assert "error:" in result.output
