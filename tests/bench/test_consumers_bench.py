"""`python -m bench consumers` at tiny sizes, so that it cannot rot (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_small_run_drains_on_each_backend_and_reports_the_cpu(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BENCH_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench", "consumers", "--tasks", "300", "--runs", "1",
         "--consumers", "1,2", "--results", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    doc = json.loads((tmp_path / "consumers-latest.json").read_text())
    ran = {key.rsplit("-", 1)[0] for key in doc["rows"]}
    assert ran | set(doc["skipped"]) == {"redis", "postgres", "cluster"}
    if os.environ.get("CI") == "true":
        assert not doc["skipped"], doc["skipped"]
    for key, row in doc["rows"].items():
        assert row["drain"]["median"] > 0, key
        assert {"consumers_cpu_pct", "server_cpu_pct", "machine_cpu_pct"} <= set(row), key
