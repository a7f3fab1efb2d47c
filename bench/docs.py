"""docs/performance.md, generated from a results document and the notes in bench/notes/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.metrics import METRICS, TARGETS, median, round_trips
from bench.producer import ROUND_TRIPS

NOTES = [Path(__file__).parent / "notes" / name for name in ("profile.md", "maintenance.md")]
"""Sections written by hand, at the end of the page in this order: where the time goes, and
maintenance at scale (`python -m bench maintenance`, bench/maintenance.py)."""

PROCESS_NOTE = """\
- **`-k process`**: scoter `-w 4 -k process` (4 spawned children run the tasks; the parent
  claims, heartbeats and settles) against Huey `-w 4 -k process` (4 forked workers, each
  dequeuing on its own), on SQLite and Redis. Target: drain (1 process) at least 1.5 x Huey's.
  Peak RSS sums each process's RSS, so the pages Huey's forked workers share with their parent
  count once per process; scoter's spawned children share almost none."""

ASYNCIO_NOTE = """\
- **`-k asyncio`**: an `async def` no-op, 10 at once (`-w 10 -k asyncio`), against arq (10 jobs
  at once, its default) on Redis. Both tasks record their completion the same way: one `RPUSH`
  on an asyncio connection of the counter's own, so that no loop waits on a socket. **No
  target is set**: the ratio is reported. On SQLite no peer runs `async def` tasks: arq has no
  SQLite backend, and Huey's greenlet workers need gevent (not in the `bench` extra), which
  cannot make sqlite3's calls cooperative; Huey's thread workers are the huey-sqlite row,
  measured against scoter's thread executor. So scoter-asyncio-sqlite has no ratio; scoter's
  thread row beside it shows what the event loop costs."""


def render(results: dict[str, Any], plot_name: str | None) -> str:
    parts = [
        _intro(results),
        _machine(results["machine"]),
        _method(results),
        _results(results),
        _targets(results),
        _executors(results),
        _round_trips(results),
        _plot(plot_name),
        _commands(results),
        *(note.read_text() for note in NOTES if note.exists()),
    ]
    return "\n".join(p for p in parts if p).rstrip() + "\n"


def _intro(results: dict[str, Any]) -> str:
    minutes = results["duration_s"] / 60
    when = f"{results['started']}, {results['runs']} runs of every figure, {minutes:.0f} minutes"
    return f"""# Performance

scoter against Huey, RQ, Dramatiq, Celery, arq and procrastinate, each on the server it shares
with scoter, in one run of the benchmark suite on one machine. This page is generated:
`python -m bench --write-docs` measures and rewrites it (bench/README.md says how and what).
This run: {when}{_load(results)}.
"""


def _load(results: dict[str, Any]) -> str:
    load = results.get("load")
    if not load:
        return ""
    return (
        f"; load average {load['before']:.1f} before and {load['after']:.1f} after "
        f"(2 cores: other jobs were running when it is above 2)"
    )


def _machine(m: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    commit = m.get("scoter_commit") or "unknown"
    legend = " (+changes: uncommitted work)" if "+changes" in commit else ""
    return f"""## Machine

| | |
|---|---|
| CPU | {m["cpu"]}, {m["cores"]} cores |
| memory | {m["memory_gib"]} GiB |
| OS | Linux {m["kernel"]} |
| Python | {m["python"]} |
| servers | SQLite {m["sqlite"]}, Redis {m["redis"]}, PostgreSQL {m["postgresql"]} (all local) |
| packages | {packages} |
| scoter measured | commit {commit}{legend} |
"""


def _method(results: dict[str, Any]) -> str:
    s = results["sizes"]
    smaller = [
        f"{k}: {v['sizes']['drain']:,} drained, {v['sizes']['latency']} latency tasks"
        for k, v in results["systems"].items()
        if v.get("sizes")
        and (v["sizes"]["drain"], v["sizes"]["latency"]) != (s["drain"], s["latency"])
    ]
    fewer = f"\n\nSmaller sizes for slow peers: {'; '.join(smaller)}." if smaller else ""
    return f"""## What is measured

Every task is a no-op that records its completion as a side effect — one Redis `RPUSH` of
its timestamp for the Redis systems (written on a socket of the task thread's own, not through
redis-py, whose client work per command would be most of a no-op task's cost), a row in a
SQLite file of its own for the SQLite ones, a row in the same database for the PostgreSQL
ones — and every figure is counted from those side effects, never from logs. Each
measurement starts in a fresh place: new SQLite files, a new PostgreSQL database, in Redis a
key prefix of its own for scoter and a flushed database for the peers. Each figure is the
median of {results["runs"]} runs, with the min and max; runs of the systems are interleaved.

- **enqueue 1-by-1**: {s["drain"]:,} tasks enqueued one call each from one producer process
  (after one warm-up call). **bulk**: the same in calls of {s["chunk"]:,}, for the systems that
  have a bulk API (scoter `enqueue_many`, RQ `enqueue_many`, procrastinate `batch_defer`).
- **drain**: {s["drain"]:,} pre-enqueued tasks, then one consumer process (or two), each with
  its natural concurrency (below). Rate = tasks ÷ time from the first completion to the last,
  so interpreter start-up is left out.
- **latency**: {s["latency"]} sequential tasks on an idle consumer, each enqueued once the
  previous one completed, after a random pause of up to 20 ms; enqueue call to side effect.
- **peak RSS**: the highest summed RSS of the consumer's processes while draining (1 process).
- **idle CPU**: CPU time of the idle consumer's processes over {s["idle_s"]:g} s.{fewer}
"""


def _cell(figure: dict[str, Any] | None, digits: int) -> str:
    if figure is None:
        return "-"
    text = f"{figure['median']:,.{digits}f}"
    if len(figure["samples"]) > 1:
        text += f" ({figure['min']:,.{digits}f}-{figure['max']:,.{digits}f})"
    return text


def _results(results: dict[str, Any]) -> str:
    head = "| system | " + " | ".join(f"{m.label} ({m.unit})" for m in METRICS) + " |"
    lines = ["## Results", "", "Median (min-max).", "", head, "|---|" + "---:|" * len(METRICS)]
    for key, system in results["systems"].items():
        if system.get("skipped"):
            lines.append(f"| {key} | skipped: {system['skipped']} |")
            continue
        metrics = system.get("metrics", {})
        cells = [_cell(metrics.get(m.key), m.digits) for m in METRICS]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    errors = [f"- {k}: {e}" for k, s in results["systems"].items() for e in s.get("errors", [])]
    if errors:
        lines += ["", "Errors:", "", *errors]
    return "\n".join(lines) + "\n" + _ratios(results)


def _ratios(results: dict[str, Any]) -> str:
    head = "| scoter on | peer | " + " | ".join(m.label for m in METRICS) + " |"
    lines = [
        "",
        "scoter ÷ peer, medians (above 1 is better for rates; below 1 for latency,",
        "memory and CPU):",
        "",
        head,
        "|---|---|" + "---:|" * len(METRICS),
    ]
    for ours, peers in results["ratios"].items():
        for peer, row in peers.items():
            cells = [f"{row[m.key]:.2f}" if m.key in row else "-" for m in METRICS]
            lines.append(f"| {ours} | {peer} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _targets(results: dict[str, Any]) -> str:
    lines = [
        "## Targets",
        "",
        "| target | scoter | reference | ratio | met |",
        "|---|---:|---:|---:|---|",
    ]
    for t in results["targets"]:
        met = {True: "yes", False: "**no**", None: "not run"}[t["met"]]
        cells = [_num(t["value"]), _num(t["reference"]), _num(t["ratio"])]
        lines.append(f"| {t['target']} | " + " | ".join(cells) + f" | {met} |")
    return "\n".join(lines) + "\n"


def _executors(results: dict[str, Any]) -> str:
    """What the executor rows are compared with, and why, when the run has any."""
    ran = {s["executor"] for s in results["systems"].values()
           if s.get("executor") and not s.get("skipped")}  # fmt: skip
    if not ran:
        return ""
    lines = [
        "## Executors",
        "",
        "scoter's other executors against the peers' consumers of the same kind, on the same",
        "backend with the same concurrency; the ratios above pair them only with each other.",
    ]
    if "process" in ran:
        lines += ["", PROCESS_NOTE]
    if "asyncio" in ran:
        lines += ["", ASYNCIO_NOTE]
    return "\n".join(lines) + "\n"


def _round_trips(results: dict[str, Any]) -> str:
    rows = round_trips(results["systems"])
    if not rows:
        return ""
    lines = [
        "## One-by-one enqueue and the round trip (Redis)",
        "",
        "An enqueue that returns once the server holds the task waits for at least one round",
        "trip. Right after its one-by-one enqueues, each Redis producer times "
        f"{ROUND_TRIPS:,} bare `RPUSH`",
        "calls of a short value on a raw socket (no client library): the fastest that any such",
        "enqueue can go on this machine. Medians.",
        "",
        "| system | enqueue 1-by-1 (tasks/s) | bare round trips/s | µs per call beyond one |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['system']} | {row['enqueue']:,.0f} | {row['round_trips']:,.0f} | "
                     f"{row['extra_us']:,.1f} |")  # fmt: skip
    return "\n".join(lines + _budgets(results, rows)) + "\n"


def _budgets(results: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """What each one-by-one enqueue target leaves beyond a bare round trip."""
    by_system = {row["system"]: row for row in rows}
    out = []
    for t in TARGETS:
        ours = by_system.get(t.system)
        peer = median(results["systems"].get(t.peer or "", {}), t.metric)
        if t.metric != "enqueue_single" or ours is None or not peer:
            continue
        budget_us = 1e6 / (t.factor * peer)
        left_us = budget_us - 1e6 / ours["round_trips"]
        out.append(
            f"\n{t.factor:g} x {t.peer}'s {peer:,.0f}/s is {budget_us:,.1f} µs a call: "
            f"{left_us:,.1f} µs beyond a bare round trip for the client's work (id, encoding, "
            f"the call) and the server's, where {t.system} takes {ours['extra_us']:,.1f} µs."
        )
    return out


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _plot(name: str | None) -> str:
    return f"![Drain rate per system and backend]({name})\n" if name else ""


def _commands(results: dict[str, Any]) -> str:
    lines = [
        "## Consumers",
        "",
        "Run from the repository root; the URLs are those of one run's fresh places.",
        "",
    ]
    for key, system in results["systems"].items():
        if system.get("skipped") or not system.get("commands"):
            continue
        lines.append(f"- **{key}** ({system['version']}), {system['concurrency']}:")
        lines.append(f"  `{system['commands']['drain_1'].split(' x ', 1)[1]}`")
    return "\n".join(lines) + "\n"
