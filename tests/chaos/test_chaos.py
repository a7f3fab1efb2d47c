"""The chaos suite: real consumers on every backend, random SIGTERM/SIGKILL/SIGSTOP, nothing lost.

Each test is one `run_chaos` round (see scoter/chaos/): it fails on a lost or dead task, on a
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

from scoter.chaos import Report, print_report, run_chaos
from scoter.chaos.evidence import SIGKILL, SIGSTOP, SIGTERM

from .conftest import Backend

CI_SECONDS = 20.0
CI_TASKS = 900
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


def assert_proven(report: Report) -> None:
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
