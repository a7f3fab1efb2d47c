"""`python -m bench limits`: what a claim costs when the task has a concurrency or rate limit.

    python -m bench limits                            SQLite, Redis and PostgreSQL, 3 runs
    python -m bench limits --tasks 2000 --runs 1 --backends sqlite --cases none,rate

For each backend and case, a fresh place gets `--tasks` queued tasks of one name; then this
process drains them as a consumer's settler does: it claims `--batch` tasks, and acknowledges
each batch in the call that claims the next (`ack_many_and_claim`). The cases differ only in
the limits stored: `none` (no limit anywhere: the claim statements of before limits existed,
which also leave tasks of limited names to the claim under limits), `concurrency` (the task's
concurrency limit, set high enough never to hold a task back), `rate` (a rate it never
reaches), `both`. So the figures are what keeping a limit costs a claim, not what waiting for
one costs. Reported per case: tasks per second of the drain and µs per task (median of the
runs, min-max), and each case's cost over `none` of the same run; and the CPU time this
process spent per task, which a busy machine disturbs less than the clock (on SQLite it is
all the work; on Redis and PostgreSQL the client's part only). Cases of one run are
interleaved (none, concurrency, rate, both, then again) so that a slow minute of a shared
machine does not land on one of them. Nothing is asserted.

`none` runs on a scoter without limits too (a checkout on PYTHONPATH): `--cases none` then
compares the claim statements before and after they learnt to leave limited tasks alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import places
from bench.metrics import summarize
from scoter.config import storage_from_url
from scoter.storage.base import Ack, NewTask, Storage
from scoter.task import new_id

HERE = Path(__file__).resolve().parent
CASES = ("none", "concurrency", "rate", "both")
NAME = "bench.limited"
QUEUE = "bench"
PAYLOAD = b'{"args":[12345,"a typical argument"],"kwargs":{"user":"someone@example.com"}}'
FILL_CHUNK = 5000
RATE = 1_000_000
"""Claims a second the `rate` case allows: more than any drain here reaches."""
console = Console() if sys.stdout.isatty() else Console(width=160)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench limits",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tasks", type=int, default=10_000, help="tasks per drain (10,000)")
    p.add_argument("--batch", type=int, default=16, help="tasks per claim (16)")
    p.add_argument("--runs", type=int, default=3, help="runs of each case (median, min, max)")
    p.add_argument("--cases", default=",".join(CASES), help=f"subset of {','.join(CASES)}")
    p.add_argument("--backends", default="sqlite,redis,postgres", help="sqlite,redis,postgres")
    p.add_argument("--results", type=Path, default=HERE / "results", help="results folder")
    return p.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        sys.exit(f"unknown case(s) {', '.join(sorted(unknown))}: choose from {', '.join(CASES)}")
    args.results.mkdir(parents=True, exist_ok=True)
    started = datetime.now()
    rows: dict[str, Any] = {}
    for backend in [b for b in args.backends.split(",") if b]:
        problem = places.server_problem(backend)
        if problem:
            console.print(f"[yellow]skip[/] {backend}: {problem}", highlight=False)
            rows[backend] = {"skipped": problem}
            continue
        rows[backend] = _backend(backend, cases, args)
    doc = {"started": started.isoformat(timespec="seconds"), "tasks": args.tasks,
           "batch": args.batch, "runs": args.runs, "rows": rows}  # fmt: skip
    name = f"limits-{started:%Y%m%d-%H%M%S}.json"
    (args.results / name).write_text(json.dumps(doc, indent=1))
    console.print(_table(doc, cases))
    console.print(f"results: {args.results / name}")


def _backend(backend: str, cases: list[str], args: argparse.Namespace) -> dict[str, Any]:
    rates: dict[str, list[float]] = {case: [] for case in cases}
    cpu: dict[str, list[float]] = {case: [] for case in cases}
    for i in range(args.runs):
        for case in cases:
            rate, cpu_us = drain(backend, case, args.tasks, args.batch, args.results)
            rates[case].append(rate)
            cpu[case].append(cpu_us)
            console.print(f"{backend} {case} run {i + 1}: {rate:,.0f} tasks/s, {cpu_us:.1f} µs "
                          "CPU a task", highlight=False)  # fmt: skip
    return {case: {**summarize(rates[case]), "cpu_us": summarize(cpu[case])} for case in cases}


def drain(backend: str, case: str, tasks: int, batch: int, root: Path) -> tuple[float, float]:
    """Tasks per second of one drain of `tasks` tasks in a fresh place, under `case`, and the
    CPU time of this process per task (µs)."""
    with places.fresh(backend, root) as place:
        url = place.url
        if backend == "redis":
            url = f"{url}{'&' if '?' in url else '?'}prefix={place.prefix}"
        storage = storage_from_url(url)
        try:
            _fill(storage, tasks)
            _limit(storage, case, batch)
            return _drain(storage, tasks, batch)
        finally:
            storage.close()


def _fill(storage: Storage, n: int) -> None:
    for first in range(0, n, FILL_CHUNK):
        size = min(FILL_CHUNK, n - first)
        storage.enqueue([NewTask(new_id(), NAME, QUEUE, PAYLOAD) for _ in range(size)])


def _limit(storage: Storage, case: str, batch: int) -> None:
    if case == "none":
        return
    from scoter.storage.coordination import TaskLimit  # absent from a scoter without limits

    concurrency = batch * 4 if case in ("concurrency", "both") else None
    rate, per = (RATE, 1.0) if case in ("rate", "both") else (None, None)
    storage.set_limits([TaskLimit(NAME, concurrency, rate, per)])


def _drain(storage: Storage, n: int, batch: int) -> tuple[float, float]:
    """Claim `batch` at a time, acknowledging each batch as the next is claimed."""
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    leases = storage.claim([QUEUE], batch, 30.0, "bench")
    while leases:
        acks = [Ack(lease.token, None, None) for lease in leases]
        acked, leases = storage.ack_many_and_claim(acks, [QUEUE], batch, 30.0, "bench")
        done += sum(acked)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if done != n:
        raise RuntimeError(f"drained {done} of {n} tasks")
    return n / elapsed, cpu / n * 1e6


def _table(doc: dict[str, Any], cases: list[str]) -> Table:
    table = Table(title=f"claims of {doc['tasks']:,} tasks, {doc['batch']} at a time")
    columns = ("backend", "case", "tasks/s (min-max)", "µs/task", "cost over none", "CPU µs/task")
    for column in columns:
        table.add_column(column, justify="left" if column in ("backend", "case") else "right")
    for backend, row in doc["rows"].items():
        if "skipped" in row:
            table.add_row(backend, "skipped", row["skipped"], "", "")
            continue
        base = row.get("none", {}).get("median")
        for case in cases:
            f = row[case]
            cost = "" if base is None else f"{1e6 / f['median'] - 1e6 / base:+.1f} µs"
            cpu = f["cpu_us"]
            table.add_row(
                backend, case, f"{f['median']:,.0f} ({f['min']:,.0f}-{f['max']:,.0f})",
                f"{1e6 / f['median']:.1f}", cost,
                f"{cpu['median']:.1f} ({cpu['min']:.1f}-{cpu['max']:.1f})",
            )  # fmt: skip
    return table
