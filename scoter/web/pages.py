"""The dashboard's pages as HTML sections: each page is a layout around named sections, and the
live updates fetch the same sections again (see app.py), so that one renderer escapes it all."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scoter.states import State
from scoter.storage.base import TaskInfo
from scoter.web.markup import Safe, ago, h, join, last_line, preview, quoted, span, when
from scoter.web.monitor import Consumer, Snapshot

Sections = dict[str, Safe]
"""A page's parts by element id, in page order."""

NAV = (("overview", "Overview", "/"), ("dead", "Dead", "/dead"), ("search", "Search", "/search"))


@dataclass(frozen=True, slots=True)
class View:
    """What every page needs to know besides its data."""

    base: str
    """The path the dashboard is mounted at ('' at the root)."""
    app: str
    storage: str
    """The storage URL, without credentials."""
    actions: bool
    """Whether a token is configured, so that retry and purge may be offered."""
    refresh_ms: int

    def url(self, path: str) -> str:
        return self.base + path

    def task_url(self, task_id: str) -> str:
        return self.url("/tasks/" + quoted(task_id))


def layout(view: View, page: str, title: str, sections: Sections, *, live: bool) -> Safe:
    links = join(
        h('<a href="{url}"{current}>{label}</a>', url=view.url(path), label=label,
          current=Safe(' aria-current="page"') if name == page else Safe(""))
        for name, label, path in NAV
    )  # fmt: skip
    token = (
        h('<label class="token">token <input id="token" type="password" autocomplete="off" '
          'placeholder="needed to retry or purge"></label>')
        if view.actions
        else h('<span class="readonly" title="start the dashboard with a token to allow retry '
               'and purge">read-only</span>')
    )  # fmt: skip
    body = join(h('<section id="{id}">{html}</section>', id=k, html=v) for k, v in sections.items())
    return h(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>{title} · {app} · scoter</title>"
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="{static}/dashboard.css">'
        "</head>"
        '<body data-live="{live}" data-refresh="{refresh}" data-api="{api}">'
        '<header><span class="brand">scoter</span><span class="app">{app}</span>'
        '<span class="storage">{storage}</span><nav>{links}</nav>{token}</header>'
        '<div id="status" class="status" role="status"></div>'
        '<div id="flash" class="flash" role="alert" hidden></div>'
        "<main><h1>{title}</h1>{body}</main>"
        '<script src="{static}/dashboard.js"></script></body></html>',
        title=title, app=view.app, storage=view.storage, static=view.url("/static"),
        live="1" if live else "0", refresh=view.refresh_ms, api=view.url("/api"), links=links,
        token=token, body=body,
    )  # fmt: skip


def table(headers: Sequence[str], rows: Iterable[Safe], empty: str, cls: str = "") -> Safe:
    rows = list(rows)
    if not rows:
        return h('<p class="empty">{empty}</p>', empty=empty)
    head = join(h("<th>{h}</th>", h=x) for x in headers)
    return h('<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>',
             cls=cls, head=head, rows=join(rows))  # fmt: skip


def state_badge(state: State | str) -> Safe:
    return h('<span class="badge s-{s}">{s}</span>', s=str(state))


def task_link(view: View, task: TaskInfo) -> Safe:
    return h('<a class="id" href="{url}">{id}</a>', url=view.task_url(task.id), id=task.id)


def name_of(task: TaskInfo) -> Safe:
    mark = h(' <span class="corrupt" title="{why}">corrupt</span>', why=task.corrupt)
    return h("{name}{mark}", name=task.name, mark=mark if task.corrupt else Safe(""))


# -- overview ---------------------------------------------------------------------------------


def overview(view: View, snap: Snapshot, started: float, now: float) -> Sections:
    return {
        "counts": counts(view, snap),
        "throughput": h(
            "<h2>Throughput <small>tasks finished per minute, last hour</small></h2>"
            '<svg id="chart" viewBox="0 0 760 220" role="img" '
            'aria-label="tasks finished per minute"></svg>'
        ),
        "consumers": consumers(snap.consumers, now),
        "running": running(view, snap.running, now),
    }


def counts(view: View, snap: Snapshot) -> Safe:
    rows = []
    for queue in snap.queues():
        cells = join(count_cell(view, queue, s, snap.counts.get((queue, s), 0)) for s in State)
        rows.append(h("<tr><th>{queue}</th>{cells}</tr>", queue=queue, cells=cells))
    if len(rows) > 1:
        totals = join(
            h('<td class="n">{n}</td>', n=sum(n for (_, st), n in snap.counts.items() if st is s))
            for s in State
        )
        rows.append(h('<tr class="total"><th>all queues</th>{cells}</tr>', cells=totals))
    body = table(["queue", *(s.value for s in State)], rows, "no tasks stored", "counts")
    return h("<h2>Queues</h2>{body}", body=body)


def count_cell(view: View, queue: str, state: State, n: int) -> Safe:
    if state is State.DEAD and n:
        url = view.url("/dead?queue=" + quoted(queue))
        return h('<td class="n s-dead"><a href="{url}">{n}</a></td>', url=url, n=n)
    return h('<td class="n s-{s}">{n}</td>', s=state.value, n=n)


def consumers(found: list[Consumer], now: float) -> Safe:
    rows = (
        h('<tr class="{cls}"><td>{name}</td><td class="n">{tasks}</td><td>{alive}</td>'
          "<td>{lease}</td></tr>",
          cls="late" if c.lease_expires is not None and c.lease_expires < now else "",
          name=c.name, tasks=c.tasks, alive=ago(c.alive, now), lease=ago(c.lease_expires, now))
        for c in found
    )  # fmt: skip
    headers = ["consumer", "tasks running", "last heartbeat seen", "soonest lease expiry"]
    return h(
        "<h2>Consumers <small>those holding a running task</small></h2>{t}",
        t=table(headers, rows, "no consumer holds a task"),
    )


def running(view: View, tasks: list[TaskInfo], now: float) -> Safe:
    rows = (
        h(
            '<tr class="{cls}"><td>{link}</td><td>{name}</td><td>{queue}</td><td>{consumer}</td>'
            '<td class="n">{attempt}</td><td>{lease}</td><td>{progress}</td>'
            "<td>{since}</td><td>{budgets}</td></tr>",
            cls="late" if t.lease_expires is not None and t.lease_expires < now else "",
            link=task_link(view, t), name=name_of(t), queue=t.queue, consumer=t.consumer or "",
            attempt=t.attempts, lease=ago(t.lease_expires, now), progress=progress(t),
            since=span(now - t.updated_at), budgets=budgets(t),
        )
        for t in tasks
    )  # fmt: skip
    headers = ["id", "task", "queue", "consumer", "attempt", "lease expires", "progress",
               "since checkpoint", "errors/interr./crashes"]  # fmt: skip
    return h(
        '<h2>Running <small>"since checkpoint": since its last checkpoint, or its start: '
        "the work a crash now would lose</small></h2>{t}",
        t=table(headers, rows, "nothing running"),
    )


def progress(task: TaskInfo) -> Safe:
    if not task.progress:
        return Safe("")
    done, total = task.progress
    share = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
    return h('<meter min="0" max="1" value="{v:.3f}"></meter> {done}/{total}',
             v=share, done=done, total=total)  # fmt: skip


def budgets(task: TaskInfo) -> str:
    return f"{task.errors}/{task.interruptions}/{task.crashes}"


# -- dead -------------------------------------------------------------------------------------


def dead(view: View, tasks: list[TaskInfo], queue: str | None, total: int, now: float) -> Sections:
    shown = "" if len(tasks) >= total else f" (showing {len(tasks)})"
    heading = h("<h2>{n} dead{queue}{shown}</h2>", n=total, shown=shown,
                queue=f" in {queue}" if queue else "")  # fmt: skip
    return {"dead-list": join([heading, dead_actions(view, total), dead_table(view, tasks, now)])}


def dead_actions(view: View, total: int) -> Safe:
    if not view.actions or not total:
        return Safe("")
    return h(
        '<div class="actions"><label><input type="checkbox" data-select-all> all shown</label>'
        '<button data-action="retry" data-scope="selected">Retry selected</button>'
        '<button data-action="purge" data-scope="selected" class="danger">Purge selected</button>'
        '<button data-action="retry" data-scope="all" data-confirm="Retry every dead task?">'
        "Retry all</button>"
        '<button data-action="purge" data-scope="all" class="danger" '
        'data-confirm="Delete every dead task for good?">Purge all</button></div>'
    )


def dead_table(view: View, tasks: list[TaskInfo], now: float) -> Safe:
    rows = (
        h(
            '<tr><td>{select}</td><td>{link}</td><td>{name}</td><td>{queue}</td>'
            '<td><span class="reason">{reason}</span></td><td>{budgets}</td><td>{died}</td>'
            '<td class="error"><details data-key="{id}"><summary>{last}</summary>'
            '<pre class="traceback">{error}</pre></details></td><td>{buttons}</td></tr>',
            select=h('<input type="checkbox" data-select value="{id}" aria-label="select">',
                     id=t.id) if view.actions else Safe(""),
            link=task_link(view, t), name=name_of(t), queue=t.queue, reason=t.reason or "",
            budgets=budgets(t), died=ago(t.updated_at, now), id=t.id,
            last=last_line(t.error) or "(no error text)", error=t.error or "",
            buttons=task_buttons(view, t),
        )
        for t in tasks
    )  # fmt: skip
    headers = ["", "id", "task", "queue", "reason", "errors/interr./crashes", "died",
               "error (open for the traceback)", ""]  # fmt: skip
    return table(headers, rows, "no dead tasks", "dead")


def task_buttons(view: View, task: TaskInfo) -> Safe:
    if not view.actions or task.state is not State.DEAD:
        return Safe("")
    return h('<button data-action="retry" data-id="{id}">Retry</button> '
             '<button data-action="purge" data-id="{id}" class="danger">Purge</button>',
             id=task.id)  # fmt: skip


# -- one task ---------------------------------------------------------------------------------


def task_page(view: View, task: TaskInfo | None, task_id: str, now: float) -> Sections:
    if task is None:
        return {"task": h('<p class="empty">No task {id}: never stored, purged, or its result '
                          "expired.</p>", id=task_id)}  # fmt: skip
    return {"task": task_summary(view, task, now), "history": history(task),
            "error": error_block(task), "data": data_block(task)}  # fmt: skip


def task_summary(view: View, t: TaskInfo, now: float) -> Safe:
    facts: list[tuple[str, object]] = [
        ("id", t.id), ("task", name_of(t)), ("queue", t.queue), ("state", state_badge(t.state)),
        ("priority", t.priority),
        ("attempts", f"{t.attempts} (errors {t.errors}, interruptions {t.interruptions}, "
                     f"crashes {t.crashes} of at most {t.max_crashes})"),
        ("enqueued", f"{when(t.created_at)} ({ago(t.created_at, now)})"),
        ("last change", f"{when(t.updated_at)} ({ago(t.updated_at, now)})"),
    ]  # fmt: skip
    if t.eta is not None and t.state is State.SCHEDULED:
        facts.append(("due", f"{when(t.eta)} ({ago(t.eta, now)})"))
    if t.state is State.RUNNING:
        facts += [
            ("consumer", t.consumer or ""), ("lease expires", ago(t.lease_expires, now)),
            ("progress", progress(t)), ("since checkpoint", span(now - t.updated_at)),
        ]  # fmt: skip
    if t.reason:
        facts.append(("dead because", h('<span class="reason">{r}</span>', r=t.reason)))
    if t.suspect:
        facts.append(("suspect", "a consumer died while it ran beside other tasks: runs alone"))
    if t.corrupt:
        facts.append(("corrupt record", t.corrupt))
    rows = join(h("<tr><th>{k}</th><td>{v}</td></tr>", k=k, v=v) for k, v in facts)
    return h('<table class="facts">{rows}</table><div class="actions">{buttons}</div>',
             rows=rows, buttons=task_buttons(view, t))  # fmt: skip


def history(t: TaskInfo) -> Safe:
    rows = (
        h('<tr class="o-{outcome}"><td class="n">{attempt}</td><td>{outcome}</td><td>{at}</td>'
          "<td>{consumer}</td><td>{detail}</td></tr>",
          attempt=e.get("attempt", ""), outcome=e.get("outcome", ""),
          at=when(at) if isinstance((at := e.get("at")), int | float) else "",
          consumer=e.get("consumer") or "", detail=e.get("detail") or "")
        for e in t.history
    )  # fmt: skip
    return h(
        "<h2>Attempts <small>errors, interruptions, crashes (with the signal that ended the "
        "process) and the outcome of each</small></h2>{t}",
        t=table(["#", "outcome", "at", "consumer", "detail"], rows, "no attempt finished yet"),
    )


def error_block(t: TaskInfo) -> Safe:
    if not t.error:
        return Safe("")
    return h('<h2>Last error</h2><pre class="traceback" id="traceback">{e}</pre>', e=t.error)


def data_block(t: TaskInfo) -> Safe:
    parts = [h("<h3>Message</h3><pre>{p}</pre>", p=preview(t.payload))]
    if t.result is not None:
        parts.append(h("<h3>Result</h3><pre>{r}</pre>", r=preview(t.result)))
    return h("<details><summary>Stored message and result</summary>{p}</details>", p=join(parts))


# -- search -----------------------------------------------------------------------------------


def search(view: View, name: str, state: str, found: list[TaskInfo] | None, now: float) -> Sections:
    options = join(
        h('<option value="{v}"{sel}>{label}</option>', v=v, label=v or "any state",
          sel=Safe(" selected") if v == state else Safe(""))
        for v in ["", *(s.value for s in State)]
    )  # fmt: skip
    form = h(
        '<form method="get" action="{action}" class="search">'
        '<input name="name" value="{name}" placeholder="part of a task name" autofocus>'
        '<select name="state">{options}</select><button>Search</button></form>',
        action=view.url("/search"),
        name=name,
        options=options,
    )
    if found is None:
        return {"search-form": form, "results": Safe("")}
    rows = (
        h('<tr><td>{link}</td><td>{name}</td><td>{queue}</td><td>{state}</td>'
          '<td class="n">{attempts}</td><td>{changed}</td></tr>',
          link=task_link(view, t), name=name_of(t), queue=t.queue, state=state_badge(t.state),
          attempts=t.attempts, changed=ago(t.updated_at, now))
        for t in found
    )  # fmt: skip
    headers = ["id", "task", "queue", "state", "attempts", "last change"]
    return {"search-form": form, "results": h(
        "<h2>{n} found <small>newest first</small></h2>{t}", n=len(found),
        t=table(headers, rows, "no task matches"))}  # fmt: skip
