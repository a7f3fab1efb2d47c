"""`python -m bench limits` at tiny sizes, so that it cannot rot (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_small_run_of_every_case_writes_its_results(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "limits", "--tasks", "300", "--runs", "1",
         "--backends", "sqlite", "--results", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [results] = tmp_path.glob("limits-*.json")
    row = json.loads(results.read_text())["rows"]["sqlite"]
    assert set(row) == {"none", "concurrency", "rate", "both"}
    assert all(case["median"] > 0 and case["cpu_us"]["median"] > 0 for case in row.values())
