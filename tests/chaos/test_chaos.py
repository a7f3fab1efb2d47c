"""The chaos suite: real consumers on every backend, random SIGTERM/SIGKILL/SIGSTOP, nothing lost.

Each test is one `run_chaos` round (see scoter/chaos.py): it fails on a lost or dead task, on a
duplicate not explained by a SIGKILL or a lease lost while SIGSTOPped, on two runs of a task at
the same time without such a lease loss, on a slow hand-off (G5) and on a slow drain (G6).
The seed of the random choices is printed; set $SCOTER_CHAOS_SEED to replay the same choices.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest
from rich.console import Console

from scoter.chaos import SIGKILL, SIGSTOP, SIGTERM, Report, print_report, run_chaos

from .conftest import Backend

CI_SECONDS = 40.0
CI_TASKS = 2000
SERVER_SCALE = 0.6
"""Server backends run a smaller round (a network round trip per step, on a 2-core machine)."""
WORKERS = {"thread": 8, "asyncio": 8, "process": 4}
"""Tasks each consumer runs at once; a process child costs a Python interpreter."""


def seed() -> int:
    return int(os.environ.get("SCOTER_CHAOS_SEED") or random.randrange(10**6))


def shown(report: Report) -> str:
    out = io.StringIO()
    print_report(report, Console(file=out, width=140, force_terminal=False))
    kept = f"\nfiles kept in {report.workdir}" if report.workdir else ""
    return out.getvalue() + kept


def chaos_round(
    backend: Backend, executor: str, tmp_path: Path, *, tasks: int, seconds: float, consumers: int
) -> Report:
    scale = SERVER_SCALE if backend.server else 1.0
    report = run_chaos(
        backend.url, tasks=int(tasks * scale), consumers=consumers, seconds=seconds * scale,
        executor=executor, seed=seed(), workers=WORKERS[executor], workdir=tmp_path / "chaos",
    )  # fmt: skip
    print(shown(report))
    return report


KNOWN_BUGS = {
    "released it at the drain deadline instead of acking it": (
        "open bug: a task that completes just before the drain deadline is released by the "
        "supervisor (Consumer._release_all, or the process executor's abandon()) while its "
        "ack is still on the way; the ack is then refused and the task runs again, a "
        "duplicate that follows a graceful stop"
    ),
    "released at the drain deadline while its thread ran on": (
        "open bug (thread executor): at the drain deadline a still-running task is released "
        "before its thread is gone; the thread runs on until the process exits, while another "
        "consumer may already run the task"
    ),
    "claimed it after its SIGTERM": (
        "open bug: a worker decides to claim a follow-up task (ack_and_claim) before its "
        "consumer stops; when that write lands after the drain released everything (a slow "
        "or stalled storage), the stopping consumer holds new leases that nobody releases or "
        "heartbeats; it starts the tasks, exits, and they come back only when the leases "
        "expire, counted as crashes"
    ),
}
"""Open bugs that the suite found, by the text of the problem they cause. A round whose only
problems are those is an expected failure (xfail) naming them, not a pass: any other problem
still fails it, and `scoter chaos` still exits 1. Delete an entry once its bug is fixed."""


def xfail_known_bugs(report: Report) -> None:
    known = {bug for text, bug in KNOWN_BUGS.items() for p in report.problems if text in p}
    explained = all(any(text in p for text in KNOWN_BUGS) for p in report.problems)
    if report.problems and explained:
        pytest.xfail("\n".join(sorted(known)) + "\n" + shown(report))


def assert_proven(report: Report) -> None:
    xfail_known_bugs(report)
    assert report.ok, shown(report)
    assert report.lost == 0 and report.dead == 0 and report.done == report.enqueued
    # The round really disrupted the fleet, and the hand-offs were measured.
    assert report.kills[SIGTERM] and report.kills[SIGKILL] and report.kills[SIGSTOP], shown(report)
    assert report.handoffs[SIGKILL].count > 0, shown(report)


def test_chaos(backend: Backend, executor: str, tmp_path: Path) -> None:
    if backend.server and executor != "thread" and os.environ.get("SCOTER_LONG") != "1":
        pytest.skip("CI runs every executor on SQLite, threads on servers; SCOTER_LONG=1: all")
    report = chaos_round(
        backend, executor, tmp_path, tasks=CI_TASKS, seconds=CI_SECONDS, consumers=3
    )
    assert_proven(report)


@pytest.mark.slow
def test_chaos_long(backend: Backend, executor: str, tmp_path: Path) -> None:
    report = chaos_round(backend, executor, tmp_path, tasks=20_000, seconds=300.0, consumers=4)
    assert_proven(report)
