"""Where the tasks of `python -m bench lateness` record each start: a SQLite file of its own
($BENCH_LATENESS_FILE), one row per start: kind, when it was due, when it started."""

from __future__ import annotations

import os
import sqlite3

ENV_FILE = "BENCH_LATENESS_FILE"
ENV_PERIODIC = "BENCH_LATENESS_PERIODIC"


def create(path: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS starts (kind TEXT, due REAL, started REAL)")


def record(kind: str, due: float, started: float) -> None:
    with sqlite3.connect(os.environ[ENV_FILE], timeout=30) as db:
        db.execute("INSERT INTO starts VALUES (?, ?, ?)", (kind, due, started))


def starts(path: str, kind: str) -> list[tuple[float, float]]:
    """(due, started) of every start of `kind`, in the order they were due."""
    with sqlite3.connect(path, timeout=30) as db:
        rows = db.execute("SELECT due, started FROM starts WHERE kind = ? ORDER BY due", (kind,))
        return [(float(due), float(started)) for due, started in rows]
