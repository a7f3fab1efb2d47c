"""The benchmark suite's smoke runs: tiny sizes, so that `python -m bench` cannot rot. They
check that a run completes and writes its JSON; they assert no timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXECUTOR_ROWS = {
    "scoter-process-sqlite": "-k process",
    "scoter-process-redis": "-k process",
    "scoter-asyncio-sqlite": "-k asyncio",
    "scoter-asyncio-redis": "-k asyncio",
}


def _quick_run(only: str, results: Path, redis_url: str) -> dict[str, Any]:
    env = {**os.environ, "BENCH_REDIS_URL": os.environ.get("BENCH_REDIS_URL", redis_url)}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", only, "--results", str(results)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results_doc: dict[str, Any] = json.loads((results / "latest.json").read_text())
    return results_doc


def _ran(key: str, system: dict[str, Any]) -> bool:
    """Whether the system ran without errors; a missing server is only tolerated outside CI
    (tests/contract does the same)."""
    assert system["errors"] == [], (key, system["errors"])
    if system["skipped"]:
        assert os.environ.get("CI") != "true" or "unreachable" not in system["skipped"]
        return False
    return True


def test_quick_scoter_run_writes_results(tmp_path: Path) -> None:
    # scoter keeps its keys under a prefix of its own; another Redis database than a full
    # benchmark's (which flushes its own) keeps the two apart when they run at once.
    results = _quick_run("scoter", tmp_path, "redis://127.0.0.1:6379/14")
    systems = results["systems"]
    assert set(systems) == {"scoter-sqlite", "scoter-redis", "scoter-postgres", *EXECUTOR_ROWS}
    assert systems["scoter-sqlite"]["skipped"] is None  # SQLite needs no server
    for key, system in systems.items():
        if not _ran(key, system):
            continue
        metrics = system["metrics"]
        for metric in ("enqueue_single", "enqueue_bulk", "drain_1", "drain_2"):
            assert metrics[metric]["median"] > 0, (key, metric)
        assert metrics["latency_p99_ms"]["median"] >= metrics["latency_p50_ms"]["median"]
        assert "scoter worker" in system["commands"]["drain_1"]
        assert EXECUTOR_ROWS.get(key, "-k thread") in system["commands"]["drain_1"]
        assert ("round_trips" in metrics) == (system["backend"] == "redis"), key
    assert [t for t in results["targets"] if t["system"] == "scoter-sqlite"]
    assert [t for t in results["targets"] if t["system"] == "scoter-process-sqlite"]


def test_quick_run_of_hueys_process_workers_writes_results(tmp_path: Path) -> None:
    pytest.importorskip("huey")  # the `bench` extra; CI installs `dev` only
    # A peer's Redis database is flushed before each measurement: not the scoter run's.
    results = _quick_run("huey-process", tmp_path, "redis://127.0.0.1:6379/13")
    systems = results["systems"]
    assert set(systems) == {"huey-process-sqlite", "huey-process-redis"}
    for key, system in systems.items():
        if _ran(key, system):
            assert system["metrics"]["drain_1"]["median"] > 0, key
            assert "-k process" in system["commands"]["drain_1"]
            assert system["executor"] == "process"
