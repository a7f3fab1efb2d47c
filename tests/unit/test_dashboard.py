"""The dashboard's endpoints through Starlette's TestClient, on memory storage: each page and
JSON endpoint, the token rule, HTML escaping of hostile stored data, the security headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from scoter import Scoter
from scoter.cli import cli
from scoter.exceptions import ConfigurationError
from scoter.states import State
from scoter.storage.base import NewTask, Storage
from scoter.storage.memory import MemoryStorage
from scoter.web import create_app
from scoter.web.monitor import Monitor, Throughput

TOKEN = "s3cret-token"
XSS_NAME = "<script>alert(1)</script>"
XSS_ERROR = 'Traceback (most recent call last):\nValueError: <img src=x onerror="alert(2)">\n'
TRACEBACK = 'Traceback (most recent call last):\n  File "t.py", line 1\nValueError: boom\n'


def _task(task_id: str, name: str = "shop.work", queue: str = "default", **kw: object) -> NewTask:
    return NewTask(task_id, name, queue, b'{"args": [1]}', **kw)  # type: ignore[arg-type]


def fill(storage: Storage) -> None:
    """A task in each state, and a dead one whose stored name and error are hostile markup."""
    storage.enqueue([_task("queued-1", queue="mail"), _task("later", eta=time.time() + 3600)])
    storage.enqueue([_task("run-1"), _task("done-1"), _task("dead-1", name="shop.fail")])
    storage.enqueue([_task("xss", name=XSS_NAME)])
    for lease in storage.claim(["default"], 4, 60.0, "host-a:42"):
        if lease.id == "done-1":
            storage.ack(lease.token, b'"ok"', None)
        elif lease.id == "dead-1":
            storage.dead(lease.token, "error", TRACEBACK)
        elif lease.id == "xss":
            storage.dead(lease.token, "error", XSS_ERROR)
        else:
            storage.progress(lease.token, 3, 10)


@pytest.fixture
def app() -> Iterator[Scoter]:
    scoter = Scoter("shop", MemoryStorage())
    fill(scoter.storage)
    yield scoter


def client(app: Scoter, token: str | None = TOKEN) -> TestClient:
    return TestClient(create_app(app, token=token, refresh=60))


def test_overview_page_shows_counts_consumers_and_running(app: Scoter) -> None:
    page = client(app).get("/")

    assert page.status_code == 200
    html = page.text
    assert "<h2>Queues</h2>" in html and ">mail</th>" in html
    assert 'href="/dead?queue=default">2</a>' in html  # the dead cell links to the list
    assert "host-a:42" in html and "run-1" in html and 'value="0.300"' in html  # progress
    assert 'id="chart"' in html and 'src="/static/dashboard.js"' in html


def test_live_sections_come_as_json(app: Scoter) -> None:
    live = client(app).get("/", headers={"accept": "application/json"}).json()

    assert set(live["sections"]) == {"counts", "throughput", "consumers", "running"}
    assert live["chart"]["minutes"] == 60 and live["error"] is None


def test_api_overview(app: Scoter) -> None:
    data = client(app).get("/api/overview").json()

    assert data["counts"]["default"] == {
        "scheduled": 1, "queued": 0, "running": 1, "done": 1, "dead": 2,
    }  # fmt: skip
    assert data["counts"]["mail"]["queued"] == 1
    assert [c["name"] for c in data["consumers"]] == ["host-a:42"]
    assert data["consumers"][0]["tasks"] == 1
    assert [t["id"] for t in data["running"]] == ["run-1"]
    assert data["running"][0]["progress"] == [3, 10]


def test_dead_page_and_api(app: Scoter) -> None:
    page = client(app).get("/dead")
    assert "2 dead" in page.text and "ValueError: boom" in page.text
    assert '<pre class="traceback">Traceback (most recent call last):' in page.text

    data = client(app).get("/api/dead", params={"queue": "default"}).json()
    assert {t["id"] for t in data["tasks"]} == {"dead-1", "xss"}
    assert client(app).get("/api/dead", params={"queue": "mail"}).json() == {"tasks": []}


def test_task_page_and_api(app: Scoter) -> None:
    page = client(app).get("/tasks/dead-1")
    assert page.status_code == 200
    assert "ValueError: boom" in page.text and "host-a:42" in page.text  # the attempt history

    data = client(app).get("/api/tasks/dead-1").json()
    assert data["state"] == "dead" and data["reason"] == "error"
    assert data["history"][0]["outcome"] == "error" and data["payload"] == '{"args": [1]}'

    assert client(app).get("/tasks/nope").status_code == 404
    assert client(app).get("/api/tasks/nope").status_code == 404


def test_search_page_and_api(app: Scoter) -> None:
    page = client(app).get("/search", params={"name": "shop."})
    assert "5 found" in page.text

    data = client(app).get("/api/search", params={"name": "fail"}).json()
    assert [t["id"] for t in data["tasks"]] == ["dead-1"]
    found = client(app).get("/api/search", params={"name": "shop", "state": "queued"}).json()
    assert [t["id"] for t in found["tasks"]] == ["queued-1"]

    bad = client(app).get("/api/search", params={"name": "x", "state": "gone"})
    assert bad.status_code == 400 and "unknown state 'gone'" in bad.json()["error"]


def test_stored_markup_is_escaped_everywhere(app: Scoter) -> None:
    """Stored data is hostile: a task named <script> and an error holding an <img onerror>."""
    c = client(app)
    pages = [c.get(p).text for p in ("/", "/dead", "/tasks/xss", "/search?name=script")]
    pages.append(
        c.get("/dead", headers={"accept": "application/json"}).json()["sections"]["dead-list"]
    )
    for html in pages:
        assert "<script>alert" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in pages[2]


def test_hostile_ids_are_quoted_in_links() -> None:
    scoter = Scoter("shop", MemoryStorage())
    scoter.storage.enqueue([_task('a"><b>/x?y#z')])
    page = client(scoter).get("/search", params={"name": ""}).text

    assert 'href="/tasks/a%22%3E%3Cb%3E%2Fx%3Fy%23z"' in page
    assert (
        client(scoter).get("/api/tasks/a%22%3E%3Cb%3E%2Fx%3Fy%23z").json()["id"] == 'a"><b>/x?y#z'
    )


def test_every_response_carries_a_strict_content_security_policy(app: Scoter) -> None:
    for path in ("/", "/dead", "/api/overview", "/static/dashboard.js"):
        headers = client(app).get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
    assert client(app).get("/static/../app.py").status_code == 404


def test_retry_and_purge_need_the_token(app: Scoter) -> None:
    c = client(app)
    for headers in ({}, {"x-scoter-token": "wrong"}):
        refused = c.post("/api/retry", data={"id": "dead-1"}, headers=headers)
        assert refused.status_code == 403 and "token" in refused.json()["error"]
        assert c.post("/api/purge", data={"all": "1"}, headers=headers).status_code == 403
    assert _state(app, "dead-1") is State.DEAD

    retried = c.post("/api/retry", data={"id": "dead-1"}, headers={"x-scoter-token": TOKEN})
    assert retried.json() == {"retried": 1, "count": 1}
    assert _state(app, "dead-1") is State.QUEUED

    purged = c.post("/api/purge", data={"all": "1", "token": TOKEN})  # a form field works too
    assert purged.json()["purged"] == 1 and _state(app, "xss") is None
    assert c.post("/api/purge", data={"token": TOKEN}).status_code == 400  # neither ids nor all


def test_without_a_token_the_dashboard_is_read_only(app: Scoter) -> None:
    c = client(app, token=None)

    refused = c.post("/api/retry", data={"all": "1"}, headers={"x-scoter-token": ""})
    assert refused.status_code == 403 and "read-only" in refused.json()["error"]
    assert _state(app, "dead-1") is State.DEAD
    assert "data-action" not in c.get("/dead").text and "read-only" in c.get("/dead").text
    assert "data-action" in client(app).get("/dead").text
    assert TOKEN not in client(app).get("/dead").text  # the token never reaches a page


def test_bulk_retry_of_selected_ids(app: Scoter) -> None:
    c = client(app)
    done = c.post("/api/retry", data={"id": ["dead-1", "xss"]}, headers={"x-scoter-token": TOKEN})

    assert done.json()["retried"] == 2
    assert _state(app, "dead-1") is _state(app, "xss") is State.QUEUED


def test_an_empty_token_is_a_configuration_error(app: Scoter) -> None:
    with pytest.raises(ConfigurationError, match="token is empty"):
        create_app(app, token=" ")


def test_mounted_under_a_prefix(app: Scoter) -> None:
    web = Starlette(routes=[Mount("/ops/scoter", app=create_app(app, token=TOKEN, refresh=60))])
    c = TestClient(web)

    page = c.get("/ops/scoter/dead").text
    assert 'href="/ops/scoter/tasks/dead-1"' in page
    assert 'src="/ops/scoter/static/dashboard.js"' in page and 'data-api="/ops/scoter/api"' in page
    assert c.get("/ops/scoter/static/dashboard.css").status_code == 200
    assert c.get("/ops/scoter/api/overview").json()["app"] == "shop"


def test_throughput_counts_growth_of_done_and_dead_per_minute() -> None:
    t = Throughput()
    at = 1_000_020.0  # a minute starts at 1_000_020 // 60 * 60
    before = {("q", State.DONE): 5, ("q", State.QUEUED): 9}
    t.add(before, {("q", State.DONE): 8, ("q", State.DEAD): 1, ("q", State.QUEUED): 2}, at)
    t.add({("q", State.DONE): 8}, {("q", State.DONE): 6}, at + 1)  # expired results: no count

    series = t.series(at + 1)
    assert series["queues"] == {"q": {"done": [0] * 59 + [3], "dead": [0] * 59 + [1]}}
    assert t.series(at + 3600)["queues"] == {}  # an hour later, gone


def test_consumers_show_their_last_sign_of_life() -> None:
    storage = MemoryStorage()
    storage.enqueue([_task("a"), _task("b")])
    (lease,) = storage.claim(["default"], 1, 30.0, "c1")
    monitor = Monitor(storage, interval=60)

    first = monitor.sample().consumers
    assert [(c.name, c.tasks) for c in first] == [("c1", 1)]
    assert first[0].alive is not None and first[0].lease_expires == pytest.approx(lease.expires)
    time.sleep(0.01)
    storage.heartbeat([lease.token], 30.0)
    renewed = monitor.sample().consumers[0]
    assert renewed.alive is not None and renewed.alive > first[0].alive


def test_a_storage_failure_keeps_the_last_sample_and_says_why(app: Scoter) -> None:
    monitor = Monitor(app.storage, interval=60)
    good = monitor.sample()

    def broken() -> dict[tuple[str, State], int]:
        raise ConnectionError("server gone")

    app.storage.counts = broken  # type: ignore[method-assign]
    bad = monitor.sample()
    assert bad.error == "ConnectionError: server gone" and bad.counts == good.counts


def _state(app: Scoter, task_id: str) -> State | None:
    info = app.storage.get(task_id)
    return None if info is None else info.state


def test_the_command_refuses_an_empty_token_with_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shop_app.py").write_text(
        f"from scoter import Scoter\napp = Scoter('shop', 'sqlite:///{tmp_path / 'q.db'}')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(cli, ["dashboard", "shop_app:app", "--token", " "])

    assert result.exit_code == 3
    assert "the dashboard token is empty" in result.output


def test_sampling_starts_with_the_server_not_with_the_first_visit(app: Scoter) -> None:
    web = create_app(app, refresh=0.05)
    with TestClient(web):  # runs the startup event, as uvicorn does
        monitor = web.state.monitor
        deadline = time.monotonic() + 5
        while monitor._latest is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert monitor._latest is not None
    assert monitor._stop.is_set()
