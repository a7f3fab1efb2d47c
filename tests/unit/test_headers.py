"""`Message.headers` reach the task as `ctx.headers`: read-only, and signed with the message."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from scoter import Message, Scoter, State, TaskContext, current_context
from scoter.storage.base import NewTask

KEY = "the signing key: 32 bytes long.."


def echo_app(url: str, **options: Any) -> tuple[Scoter, list[Mapping[str, str]]]:
    app = Scoter("headers", url, **options)
    seen: list[Mapping[str, str]] = []

    @app.task(context=True)
    def echo(ctx: TaskContext) -> dict[str, str]:
        seen.append(ctx.headers)
        return dict(ctx.headers)

    @app.task
    def plain() -> None:
        context = current_context()
        assert context is not None
        seen.append(context.headers)

    return app, seen


def test_headers_reach_the_task_read_only() -> None:
    app, seen = echo_app("memory://")
    result = app.enqueue(Message("echo", headers={"traceparent": "00-abc-def-01", "tenant": "7"}))
    app.run_pending()
    assert result.get() == {"traceparent": "00-abc-def-01", "tenant": "7"}
    with pytest.raises(TypeError):
        seen[0]["tenant"] = "8"  # type: ignore[index]


def test_a_message_without_headers_has_empty_ones() -> None:
    app, seen = echo_app("memory://")
    app.enqueue(Message("plain"))
    app.tasks["plain"]()
    app.run_pending()
    assert [dict(h) for h in seen] == [{}, {}]


def test_signed_headers_that_were_changed_never_run(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    app, seen = echo_app(f"sqlite:///{db}", secret_keys=[KEY])
    result = app.enqueue(Message("echo", headers={"tenant": "alice"}))
    with sqlite3.connect(db) as conn:
        (payload,) = conn.execute("SELECT payload FROM scoter_tasks WHERE id = ?", (result.id,))
        forged = bytes(payload[0]).replace(b"alice", b"mallo")
        conn.execute("UPDATE scoter_tasks SET payload = ? WHERE id = ?", (forged, result.id))
    app.run_pending()
    info = app.storage.get(result.id)
    assert info is not None and (info.state, info.reason) == (State.DEAD, "undecodable")
    assert seen == []
    good = app.enqueue(Message("echo", headers={"tenant": "bob"}))
    app.run_pending()
    assert good.get() == {"tenant": "bob"}


def test_headers_that_are_not_a_mapping_end_the_task_dead() -> None:
    app, seen = echo_app("memory://")
    payload = b'{"args": [], "kwargs": {}, "headers": ["not", "a", "mapping"]}'
    app.storage.enqueue([NewTask("bad-headers", "echo", "default", payload)])
    app.run_pending()
    info = app.storage.get("bad-headers")
    assert info is not None and (info.state, info.reason) == (State.DEAD, "undecodable")
    assert "payload headers is not a mapping" in (info.error or "")
    assert seen == []
