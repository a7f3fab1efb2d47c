"""`python -m bench maintenance` at tiny sizes, so that it cannot rot (no timing asserted), and
the hand-written sections of docs/performance.md surviving a regeneration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import docs

REPO = Path(__file__).resolve().parents[2]


def test_a_small_run_of_every_step_writes_its_results(tmp_path: Path) -> None:
    steps = "expire,purge,promote,rescue"
    env = {
        **os.environ,
        "BENCH_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench", "maintenance", "--tasks", "1200", "--steps", steps,
         "--backends", "sqlite,redis", "--results", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    rows = json.loads((tmp_path / "maintenance-latest.json").read_text())["rows"]
    assert set(rows) == {f"{s}-{b}" for s in steps.split(",") for b in ("sqlite", "redis")}
    for key, row in rows.items():
        if row.get("skipped"):
            assert key.endswith("redis") and os.environ.get("CI") != "true", row
            continue
        figures = row["figures"]
        assert figures["moved"]["median"] == 1200, key
        assert figures["enqueue_failed"]["median"] == 0, key
        assert ("slow_calls" in figures) == key.endswith("redis"), key
        assert ("file_mb_after" in figures) == key.endswith("sqlite"), key


def test_the_page_and_a_regenerated_one_end_with_the_hand_written_sections() -> None:
    from test_executor_rows import _results

    notes = [note.read_text() for note in docs.NOTES]
    titles = [note.splitlines()[0] for note in notes]
    assert titles == ["## Where the time goes", "## Maintenance at scale"]
    assert (REPO / "docs" / "performance.md").read_text().endswith("\n".join(notes))
    assert docs.render(_results(), None).endswith("\n".join(notes))


def test_a_blocked_call_counts_the_calls_it_held_up() -> None:
    from bench.maintenance import _as_scheduled

    assert _as_scheduled([0.001], 0.005) == [0.001]
    held_up = _as_scheduled([0.0205], 0.005)
    assert [round(s, 4) for s in held_up] == [0.0205, 0.0155, 0.0105, 0.0055, 0.0005]
