"""`python -m bench lateness` at a tiny size, so that it cannot rot (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_small_run_writes_a_row_per_kind(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "lateness", "--samples", "2", "--huey-minutes", "0",
         "--only", "scoter", "--backends", "sqlite", "--results", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [saved] = tmp_path.glob("lateness-*.json")
    rows = json.loads(saved.read_text())["rows"]
    assert [(r["system"], r["backend"], r["kind"], r["samples"]) for r in rows] == [
        ("scoter", "sqlite", "delayed", 2), ("scoter", "sqlite", "periodic", 2),
    ]  # fmt: skip
    assert all(r["p50_ms"] is not None for r in rows)
