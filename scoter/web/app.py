"""The dashboard as an ASGI app (Starlette): pages, their live sections, a JSON API, actions.

Read-only unless built with a token: retry and purge are POSTs (url-encoded forms: `id` for
each task, or `all=1`) that carry the token in the `X-Scoter-Token` header (or a `token` form
field), compared in constant time; without a token
configured, or with a wrong one, they are refused with 403. A token never reaches a page.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from scoter.app import Scoter
from scoter.config import redact
from scoter.exceptions import ConfigurationError
from scoter.states import State
from scoter.web import pages
from scoter.web.api import task_json
from scoter.web.monitor import Monitor

TOKEN_HEADER = "x-scoter-token"
LIMIT = 200
"""The most tasks a list (dead, search) shows."""
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
MAX_FORM_BYTES = 1 << 20
"""The largest action request read (ids of the tasks to retry or purge, url-encoded)."""
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                Awaitable[None]]  # fmt: skip


class Html(HTMLResponse):
    def render(self, content: Any) -> bytes:
        return str(content).encode("utf-8", "replace")


class Json(JSONResponse):
    """ASCII JSON: a stored text that is not valid Unicode still encodes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def create_app(
    app: Scoter, *, token: str | None = None, refresh: float = 2.0, monitor: Monitor | None = None
) -> Starlette:
    """The dashboard of `app`, to serve (`scoter dashboard`) or to mount in a Starlette or
    FastAPI app: `web.mount("/scoter", create_app(app, token=...))`.

    :param token: allows retry and purge to whoever sends it; None: read-only.
    :param refresh: seconds between samples of storage, and between live updates of a page.
    :param monitor: the sampler to read from (default: one of its own on `app.storage`).
    """
    if token is not None and not token.strip():
        raise ConfigurationError("the dashboard token is empty: give a secret, or none to run "
                                 "it read-only")  # fmt: skip
    if refresh <= 0:
        raise ConfigurationError(f"refresh must be above 0 seconds, not {refresh}")
    dash = _Dashboard(app, token, refresh, monitor or Monitor(app.storage, interval=refresh))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        dash.monitor.start()  # the chart counts from the start, not from the first visit
        yield
        dash.monitor.close()

    web = Starlette(routes=dash.routes(), lifespan=lifespan)
    web.state.monitor = dash.monitor
    web.add_middleware(_SecurityHeaders)
    return web


class _SecurityHeaders:
    """Adds SECURITY_HEADERS to every response."""

    def __init__(self, app: ASGI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


class _Dashboard:
    def __init__(self, app: Scoter, token: str | None, refresh: float, monitor: Monitor) -> None:
        self.app = app
        self.storage = app.storage
        self.token = token
        self.refresh = refresh
        self.monitor = monitor

    def routes(self) -> list[Route]:
        return [
            Route("/", self.overview, name="overview"),
            Route("/dead", self.dead, name="dead"),
            Route("/tasks/{task_id:path}", self.task, name="task"),
            Route("/search", self.search, name="search"),
            Route("/static/{name}", self.static, name="static"),
            Route("/api/overview", self.api_overview),
            Route("/api/dead", self.api_dead),
            Route("/api/tasks/{task_id:path}", self.api_task),
            Route("/api/search", self.api_search),
            Route("/api/retry", self.retry, methods=["POST"]),
            Route("/api/purge", self.purge, methods=["POST"]),
        ]

    def view(self, request: Request) -> pages.View:
        return pages.View(
            base=request.scope.get("root_path", "").rstrip("/"), app=self.app.name,
            storage=redact(self.storage.url), actions=self.token is not None,
            refresh_ms=int(self.refresh * 1000),
        )  # fmt: skip

    def page(
        self, request: Request, name: str, title: str, sections: pages.Sections, *,
        live: bool = True, chart: object = None, status: int = 200,
    ) -> Response:  # fmt: skip
        """The page, or its sections as JSON for a live update (Accept: application/json)."""
        if "application/json" in request.headers.get("accept", ""):
            error = self.monitor.latest().error if name == "overview" else None
            return Json({"sections": sections, "chart": chart, "error": error}, status)
        html = pages.layout(self.view(request), name, title, sections, live=live)
        return Html(html, status, headers={"vary": "Accept"})

    # -- pages ----------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        snap = self.monitor.latest()
        sections = pages.overview(self.view(request), snap, self.monitor.started, time.time())
        chart = self.monitor.throughput.series(snap.at)
        return self.page(request, "overview", "Overview", sections, chart=chart)

    def dead(self, request: Request) -> Response:
        queue = request.query_params.get("queue") or None
        tasks = self.storage.list_tasks(State.DEAD, queue=queue, limit=LIMIT)
        counts = self.monitor.latest().counts
        total = sum(n for (q, s), n in counts.items() if s is State.DEAD and queue in (None, q))
        total = max(total, len(tasks))
        sections = pages.dead(self.view(request), tasks, queue, total, time.time())
        return self.page(request, "dead", "Dead tasks", sections)

    def task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        info = self.storage.get(task_id)
        sections = pages.task_page(self.view(request), info, task_id, time.time())
        title = "Task" if info is None else f"{info.name} · {info.state}"
        return self.page(request, "task", title, sections, status=200 if info else 404)

    def search(self, request: Request) -> Response:
        name = request.query_params.get("name", "")
        state = request.query_params.get("state", "")
        try:
            wanted = _state(state)
        except ValueError as exc:
            return Html(str(exc), 400, media_type="text/plain")
        asked = "name" in request.query_params
        found = self.storage.find_tasks(name, wanted, LIMIT) if asked else None
        sections = pages.search(self.view(request), name, state, found, time.time())
        return self.page(request, "search", "Search by task name", sections, live=False)

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", 404, media_type="text/plain")
        body = resources.files("scoter.web").joinpath(f"static/{name}").read_bytes()
        return Response(body, media_type=STATIC[name])

    # -- JSON -----------------------------------------------------------------------------

    def api_overview(self, request: Request) -> Response:
        snap = self.monitor.latest()
        counts: dict[str, dict[str, int]] = {}
        for (queue, state), n in sorted(snap.counts.items()):
            counts.setdefault(queue, {s.value: 0 for s in State})[state.value] = n
        return Json({
            "app": self.app.name, "storage": redact(self.storage.url), "at": snap.at,
            "error": snap.error, "counts": counts,
            "throughput": self.monitor.throughput.series(snap.at),
            "consumers": [
                {"name": c.name, "tasks": c.tasks, "lease_expires": c.lease_expires,
                 "alive": c.alive} for c in snap.consumers
            ],
            "running": [task_json(t) for t in snap.running],
        })  # fmt: skip

    def api_dead(self, request: Request) -> Response:
        queue = request.query_params.get("queue") or None
        limit = _limit(request)
        tasks = self.storage.list_tasks(State.DEAD, queue=queue, limit=limit)
        return Json({"tasks": [task_json(t) for t in tasks]})

    def api_task(self, request: Request) -> Response:
        info = self.storage.get(request.path_params["task_id"])
        if info is None:
            return Json({"error": "no such task"}, 404)
        return Json(task_json(info, full=True))

    def api_search(self, request: Request) -> Response:
        name = request.query_params.get("name", "")
        try:
            state = _state(request.query_params.get("state", ""))
        except ValueError as exc:
            return Json({"error": str(exc)}, 400)
        found = self.storage.find_tasks(name, state, _limit(request))
        return Json({"tasks": [task_json(t) for t in found]})

    # -- actions --------------------------------------------------------------------------

    async def retry(self, request: Request) -> Response:
        return await self._act(request, "retried", self.storage.requeue_dead)

    async def purge(self, request: Request) -> Response:
        return await self._act(request, "purged", lambda ids: self.storage.purge(State.DEAD, ids))

    async def _act(
        self, request: Request, done: str, act: Callable[[list[str] | None], int]
    ) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return Json({"error": f"a request of more than {MAX_FORM_BYTES} bytes"}, 413)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        refused = self._refused(request, form.get("token", [""])[0])
        if refused:
            return Json({"error": refused}, 403)
        ids = form.get("id", [])
        if bool(ids) == (form.get("all") == ["1"]):
            return Json({"error": "give task ids (id=...), or all=1 for every dead task"}, 400)
        count = await run_in_threadpool(act, ids or None)
        await run_in_threadpool(self.monitor.sample)
        return Json({done: count, "count": count})

    def _refused(self, request: Request, field: str) -> str | None:
        """Why the request may not act; None when it may."""
        if self.token is None:
            return ("read-only dashboard: start it with --token (or $SCOTER_DASHBOARD_TOKEN), "
                    "or create_app(app, token=...), to retry or purge")  # fmt: skip
        given = request.headers.get(TOKEN_HEADER) or field
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return "wrong or missing token: enter the dashboard's token to retry or purge"
        return None


def _state(value: str) -> State | None:
    """The state named (None: any); ValueError saying which exist for another name."""
    try:
        return State(value) if value else None
    except ValueError:
        known = ", ".join(s.value for s in State)
        raise ValueError(f"unknown state {value!r}: give one of {known}, or none") from None


def _limit(request: Request) -> int:
    try:
        return min(max(int(request.query_params.get("limit", LIMIT)), 1), 1000)
    except ValueError:
        return LIMIT
