"""The dashboard's JSON API and pages on each server backend (SQLite, Redis, PostgreSQL), through
Starlette's TestClient: the same counts, lists, task pages, search and actions on all three."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import drop_postgres_schema, postgres_schema_url, redis_prefix_url
from starlette.testclient import TestClient

from scoter import Scoter
from scoter.states import State
from scoter.storage.base import NewTask, Storage
from scoter.web import create_app

TOKEN = "backend-token"
TRACEBACK = 'Traceback (most recent call last):\n  File "t.py", line 1\nValueError: <b>boom</b>\n'


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scoter]:
    kind = request.param
    url = {
        "sqlite": lambda: f"sqlite:///{tmp_path / 'q.db'}",
        "redis": redis_prefix_url,
        "postgres": postgres_schema_url,
    }[kind]()
    scoter = Scoter("shop", url)
    yield scoter
    if kind == "redis":
        storage = scoter.storage
        for key in storage.client.scan_iter(f"{storage.prefix}:*", count=1000):  # type: ignore[attr-defined]
            storage.client.delete(key)  # type: ignore[attr-defined]
    scoter.storage.close()
    if kind == "postgres":
        drop_postgres_schema(url)


def _fill(storage: Storage) -> None:
    """One task in each state on queue default, and a queued one on mail."""
    new = [NewTask(i, f"shop.{i}", "default", b"{}") for i in ("running", "done", "dead")]
    storage.enqueue([*new, NewTask("mailed", "shop.mail", "mail", b"{}")])
    storage.enqueue([NewTask("later", "shop.later", "default", b"{}", eta=time.time() + 3600)])
    for lease in storage.claim(["default"], 3, 60.0, "host-b:7"):
        if lease.id == "done":
            assert storage.ack(lease.token, b'"ok"', None)
        elif lease.id == "dead":
            assert storage.dead(lease.token, "error", TRACEBACK)
        else:
            assert storage.progress(lease.token, 1, 4)
            assert storage.checkpoint(lease.token, b"1")


def test_the_api_on_each_backend(app: Scoter) -> None:
    _fill(app.storage)
    c = TestClient(create_app(app, token=TOKEN, refresh=60))

    overview = c.get("/api/overview").json()
    assert overview["counts"] == {
        "default": {"scheduled": 1, "queued": 0, "running": 1, "done": 1, "dead": 1},
        "mail": {"scheduled": 0, "queued": 1, "running": 0, "done": 0, "dead": 0},
    }
    assert [(x["name"], x["tasks"]) for x in overview["consumers"]] == [("host-b:7", 1)]
    assert overview["running"][0]["progress"] == [1, 4]

    assert [t["id"] for t in c.get("/api/dead").json()["tasks"]] == ["dead"]
    dead = c.get("/api/tasks/dead").json()
    assert dead["error"] == TRACEBACK and dead["history"][0]["outcome"] == "error"
    assert [t["id"] for t in c.get("/api/search?name=shop.d").json()["tasks"]] == ["dead", "done"]
    assert "&lt;b&gt;boom&lt;/b&gt;" in c.get("/tasks/dead").text

    assert c.post("/api/retry", data={"id": "dead"}).status_code == 403
    retried = c.post("/api/retry", data={"id": "dead"}, headers={"x-scoter-token": TOKEN})
    assert retried.json()["retried"] == 1 and _state(app, "dead") is State.QUEUED
    purge = c.post("/api/purge", data={"all": "1"}, headers={"x-scoter-token": TOKEN})
    assert purge.json()["purged"] == 0  # nothing dead any more


def _state(app: Scoter, task_id: str) -> State | None:
    info = app.storage.get(task_id)
    return None if info is None else info.state
