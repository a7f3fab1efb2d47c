"""The benchmark suite's smoke run: tiny sizes, scoter only, so that `python -m bench` cannot
rot. It checks that the run completes and writes its JSON; it asserts no timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_scoter_run_writes_results(tmp_path: Path) -> None:
    # scoter keeps its keys under a prefix of its own; another Redis database than a full
    # benchmark's (which flushes its own) keeps the two apart when they run at once.
    env = {
        **os.environ,
        "BENCH_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "scoter", "--results", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    systems = results["systems"]
    assert set(systems) == {"scoter-sqlite", "scoter-redis", "scoter-postgres"}
    assert systems["scoter-sqlite"]["skipped"] is None  # SQLite needs no server
    for key, system in systems.items():
        assert system["errors"] == [], (key, system["errors"])
        if system["skipped"]:
            # A backend that is not ready is skipped with a note; a missing server is only
            # tolerated outside CI (tests/contract does the same).
            assert os.environ.get("CI") != "true" or "unreachable" not in system["skipped"]
            continue
        metrics = system["metrics"]
        for metric in ("enqueue_single", "enqueue_bulk", "drain_1", "drain_2"):
            assert metrics[metric]["median"] > 0, (key, metric)
        assert metrics["latency_p99_ms"]["median"] >= metrics["latency_p50_ms"]["median"]
        assert "scoter worker" in system["commands"]["drain_1"]
        assert ("round_trips" in metrics) == (system["backend"] == "redis"), key
    assert [t for t in results["targets"] if t["system"] == "scoter-sqlite"]
