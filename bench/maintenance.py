"""`python -m bench maintenance`: a maintenance step over a big backlog, while a producer
enqueues.

    python -m bench maintenance                          2,000,000 expired results, SQLite and
                                                         Redis (and PostgreSQL), one run each
    python -m bench maintenance --tasks 200000 --runs 3  a quick run
    python -m bench maintenance --steps expire,purge,promote,rescue --backends sqlite

For each backend and step, a fresh place is filled through the storage's own calls with
`--tasks` tasks that the step has to move or delete: done tasks whose results expired
(`expire`: `expire_results`; `purge`: `purge(done)`), scheduled tasks that are due
(`promote`) or running tasks whose leases expired (`rescue`). Then a producer process
enqueues one task every `--pace` seconds on another queue and times each call, while this
process runs the step once, as the consumer's rescuer and scheduler do. Reported: the step's
duration and count, the producer's enqueue times while the step ran (p50, p99, max) and its
failed calls; on Redis, every script call of the place that ran longer than 10 ms
(SLOWLOG, `slowlog-log-slower-than` set to 10000 µs for the run and restored afterwards);
on SQLite, the file's size after the fill and after the step. The percentiles count the calls
a blocked call held up too (`_as_scheduled`). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import places
from bench.metrics import summarize
from scoter.config import storage_from_url
from scoter.states import State
from scoter.storage.base import Ack, NewTask, Storage
from scoter.task import new_id

HERE = Path(__file__).resolve().parent
STEPS = ("expire", "purge", "promote", "rescue")
FILL_QUEUE = "backlog"
LIVE_QUEUE = "live"
FILL_CHUNK = 5000
PAYLOAD = b'{"args":[12345,"a typical argument"],"kwargs":{"user":"someone@example.com"}}'
RESULT = b'{"status":"ok","rows":1234}'
AHEAD_S = 3600.0
"""Fill etas and leases end this far ahead; promote and rescue run that far in the future."""
SETTLE_S = 0.5
"""The producer's run before and after the step: its enqueue times without maintenance."""
SLOW_US = 10_000
"""SLOWLOG threshold: script calls longer than this are logged."""
SLOWLOG_LEN = 1024
console = Console() if sys.stdout.isatty() else Console(width=160)


@dataclass
class Sample:
    """One timed enqueue of the producer."""

    at: float
    seconds: float
    error: str | None = None


@dataclass
class Outcome:
    """One run of one step on one backend."""

    figures: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench maintenance",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tasks", type=int, default=2_000_000, help="backlog size (2,000,000)")
    p.add_argument("--steps", default="expire", help=f"subset of {','.join(STEPS)}")
    p.add_argument("--backends", default="sqlite,redis,postgres", help="sqlite,redis,postgres")
    p.add_argument("--runs", type=int, default=1, help="runs of each (median, min, max)")
    p.add_argument("--pace", type=float, default=0.005, help="seconds between enqueues")
    p.add_argument("--results", type=Path, default=HERE / "results", help="results folder")
    return p.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse(argv)
    steps = [s for s in args.steps.split(",") if s]
    unknown = set(steps) - set(STEPS)
    if unknown:
        sys.exit(f"unknown step(s) {', '.join(sorted(unknown))}: choose from {', '.join(STEPS)}")
    args.results.mkdir(parents=True, exist_ok=True)
    started = datetime.now()
    rows: dict[str, dict[str, Any]] = {}
    for backend in [b for b in args.backends.split(",") if b]:
        problem = places.server_problem(backend)
        for step in steps:
            key = f"{step}-{backend}"
            if problem:
                rows[key] = {"skipped": problem}
                console.print(f"[yellow]skip[/] {key}: {problem}", highlight=False)
                continue
            rows[key] = _runs(backend, step, args)
    doc = {"started": started.isoformat(timespec="seconds"), "tasks": args.tasks,
           "pace_s": args.pace, "runs": args.runs, "rows": rows}  # fmt: skip
    name = f"maintenance-{started:%Y%m%d-%H%M%S}.json"
    (args.results / name).write_text(json.dumps(doc, indent=1))
    (args.results / "maintenance-latest.json").write_text(json.dumps(doc, indent=1))
    console.print(_table(doc))
    console.print(f"results: {args.results / name}")


def _runs(backend: str, step: str, args: argparse.Namespace) -> dict[str, Any]:
    outcomes = []
    for i in range(args.runs):
        console.print(f"[bold]{step}-{backend}[/] run {i + 1}/{args.runs} …", highlight=False)
        outcome = run_once(backend, step, args.tasks, args.pace, args.results)
        brief = ", ".join(f"{k} {v:,.1f}" for k, v in outcome.figures.items())
        console.print(f"  {brief}", highlight=False)
        for error in outcome.errors:
            console.print(f"  [red]{error}[/]", highlight=False)
        outcomes.append(outcome)
    keys = dict.fromkeys(k for o in outcomes for k in o.figures)
    return {
        "figures": {k: summarize([o.figures[k] for o in outcomes if k in o.figures]) for k in keys},
        "errors": [e for o in outcomes for e in o.errors],
    }


def run_once(backend: str, step: str, tasks: int, pace: float, root: Path) -> Outcome:
    """Fill a fresh place, then run `step` once while a producer enqueues."""
    with places.fresh(backend, root) as place:
        url = _url(place)
        storage = storage_from_url(url)
        try:
            outcome = Outcome()
            t0 = time.perf_counter()
            _fill(storage, step, tasks)
            outcome.figures["fill_s"] = time.perf_counter() - t0
            if backend == "sqlite":
                outcome.figures["file_mb_filled"] = _file_mb(url)
            with _slowlog(storage, outcome) if backend == "redis" else _nothing():
                _measure(storage, step, url, pace, outcome)
            if backend == "sqlite":
                outcome.figures["file_mb_after"] = _file_mb(url)
        finally:
            storage.close()
    return outcome


def _url(place: places.Place) -> str:
    if place.backend == "redis":
        return f"{place.url}{'&' if '?' in place.url else '?'}prefix={place.prefix}"
    return place.url


def _fill(storage: Storage, step: str, n: int) -> None:
    """`n` tasks that `step` will move or delete, stored FILL_CHUNK at a time."""
    for first in range(0, n, FILL_CHUNK):
        size = min(FILL_CHUNK, n - first)
        eta = time.time() + AHEAD_S if step == "promote" else None
        storage.enqueue([NewTask(new_id(), "bench.noop", FILL_QUEUE, PAYLOAD, 0, eta)
                         for _ in range(size)])  # fmt: skip
        if step == "promote":
            continue
        leases = storage.claim([FILL_QUEUE], size, AHEAD_S, "bench-fill")
        if step in ("expire", "purge"):
            ttl = 0.0 if step == "expire" else None
            acks = [Ack(lease.token, RESULT, ttl) for lease in leases]
            storage.ack_many_and_claim(acks, [FILL_QUEUE], 0, AHEAD_S, "bench-fill")


def _step(storage: Storage, step: str) -> Callable[[], int]:
    """The maintenance call, as the consumer (or `scoter dead purge --all`) makes it."""
    later = time.time() + 2 * AHEAD_S
    calls: dict[str, Callable[[], int]] = {
        "expire": lambda: storage.expire_results(time.time()),
        "purge": lambda: storage.purge(State.DONE),
        "promote": lambda: storage.promote(later),
        "rescue": lambda: len(storage.rescue(later)),
    }
    return calls[step]


def _measure(storage: Storage, step: str, url: str, pace: float, outcome: Outcome) -> None:
    spawn = multiprocessing.get_context("spawn")
    stop, ready, out = spawn.Event(), spawn.Event(), spawn.Queue()
    producer = spawn.Process(target=produce, args=(url, pace, ready, stop, out))
    producer.start()
    ready.wait(60)
    time.sleep(SETTLE_S)
    call = _step(storage, step)
    began = time.time()
    try:
        count = call()
    except Exception as exc:  # reported, as the producer's failures are
        outcome.errors.append(f"{step}: {exc!r}"[:300])
        count = 0
    ended = time.time()
    time.sleep(SETTLE_S)
    stop.set()
    samples: list[Sample] = [Sample(*s) for s in out.get(timeout=120)]
    producer.join(30)
    outcome.figures.update(step_s=ended - began, moved=count)
    _enqueue_figures(samples, began, ended, pace, outcome)


def produce(url: str, pace: float, ready: Any, stop: Any, out: Any) -> None:
    """The producer process: enqueue one task every `pace` s until `stop`, timing each."""
    storage = storage_from_url(url)
    storage.enqueue([NewTask(new_id(), "bench.noop", LIVE_QUEUE, PAYLOAD)])  # connected
    ready.set()
    samples: list[tuple[float, float, str | None]] = []
    while not stop.is_set():
        at, t0 = time.time(), time.perf_counter()
        error = None
        try:
            storage.enqueue([NewTask(new_id(), "bench.noop", LIVE_QUEUE, PAYLOAD)])
        except Exception as exc:  # counted: a failed enqueue is what this looks for
            error = repr(exc)[:200]
        samples.append((at, time.perf_counter() - t0, error))
        time.sleep(pace)
    storage.close()
    out.put(samples)


def _enqueue_figures(
    samples: list[Sample], began: float, ended: float, pace: float, out: Outcome
) -> None:
    """Enqueue times of the calls that started while the step ran (and those before it)."""
    during = [s for s in samples if began <= s.at <= ended]
    before = [s.seconds for s in samples if s.at < began and s.error is None]
    ok = sorted(_as_scheduled([s.seconds for s in during if s.error is None], pace))
    failed = [s.error for s in during if s.error]
    out.figures["enqueues"] = len(during)
    out.figures["enqueue_failed"] = len(failed)
    if ok:
        out.figures["enqueue_p50_ms"] = 1000 * _quantile(ok, 0.50)
        out.figures["enqueue_p99_ms"] = 1000 * _quantile(ok, 0.99)
        out.figures["enqueue_max_ms"] = 1000 * ok[-1]
    if before:
        out.figures["idle_p99_ms"] = 1000 * _quantile(sorted(before), 0.99)
    out.errors += sorted(set(failed))[:3]


def _as_scheduled(seconds: list[float], pace: float) -> list[float]:
    """The enqueue times a producer calling every `pace` s sees, not only those of the calls
    this one made: while a call is blocked, the calls due behind it wait too (a call of 20 s
    stands for 4,000 calls at 5 ms, waiting 20 s, 19.995 s, ...), which a paced loop that
    sleeps after each call would leave out of its percentiles."""
    out: list[float] = []
    for took in seconds:
        out += [took - k * pace for k in range(int(took / pace) + 1)]
    return out


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def _slowlog(storage: Storage, outcome: Outcome) -> Iterator[None]:
    """Log every command over SLOW_US while the block runs; count this place's script calls
    among them. The server's settings are restored afterwards."""
    client = storage.client  # type: ignore[attr-defined]
    prefix = storage.prefix.encode()  # type: ignore[attr-defined]
    saved = {k: client.config_get(k)[k] for k in ("slowlog-log-slower-than", "slowlog-max-len")}
    client.config_set("slowlog-log-slower-than", SLOW_US)
    client.config_set("slowlog-max-len", SLOWLOG_LEN)
    client.slowlog_reset()
    try:
        yield
        entries = client.slowlog_get(SLOWLOG_LEN)
    finally:
        for key, value in saved.items():
            client.config_set(key, value)
    names = {script.sha.encode(): name for name, script in storage._scripts.items()}  # type: ignore[attr-defined]
    ours = [e for e in entries if prefix in e["command"]]
    outcome.figures["slow_calls"] = len(ours)
    outcome.figures["slowest_call_ms"] = max((e["duration"] / 1000 for e in ours), default=0.0)
    slow: dict[str, list[float]] = {}
    for e in ours:
        words = e["command"].split()
        name = names.get(words[1], "?") if words[0] == b"EVALSHA" else words[0].decode()
        slow.setdefault(name, []).append(round(e["duration"] / 1000, 1))
    outcome.errors += [f"over 10 ms: {name} {sorted(ms)[-5:]}" for name, ms in slow.items()]


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _file_mb(url: str) -> float:
    path = Path(url.removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists()) / 2**20


COLUMNS = [
    ("moved", "tasks", 0), ("step_s", "step s", 1), ("enqueues", "enqueues", 0),
    ("enqueue_p50_ms", "p50 ms", 1), ("enqueue_p99_ms", "p99 ms", 1),
    ("enqueue_max_ms", "max ms", 0), ("enqueue_failed", "failed", 0),
    ("slow_calls", "scripts >10 ms", 0), ("slowest_call_ms", "slowest ms", 0),
    ("file_mb_filled", "file MB filled", 0), ("file_mb_after", "file MB after", 0),
]  # fmt: skip


def _table(doc: dict[str, Any]) -> Table:
    table = Table(title=f"{doc['tasks']:,} tasks, medians of {doc['runs']} run(s)")
    table.add_column("step-backend")
    for _, label, _ in COLUMNS:
        table.add_column(label, justify="right")
    for key, row in doc["rows"].items():
        figures = row.get("figures", {})
        cells = [f"{figures[k]['median']:,.{d}f}" if k in figures else "-" for k, _, d in COLUMNS]
        table.add_row(key, *cells)
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
