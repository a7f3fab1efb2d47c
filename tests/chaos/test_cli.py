"""`scoter chaos` end to end: a small round, its report, and its exit code."""

from __future__ import annotations

import re
import subprocess
import sys


def test_scoter_chaos_reports_and_exits_0_when_nothing_is_lost() -> None:
    command = [sys.executable, "-m", "scoter", "chaos", "--tasks", "150", "--seconds", "6"]
    proc = subprocess.run([*command, "--seed", "7"], capture_output=True, text=True, timeout=180)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert re.search(r"^\W*lost\W+0\W*$", proc.stdout, re.MULTILINE), output
    assert re.search(r"hand-off after SIGKILL", proc.stdout), output
    assert "nothing lost, nothing unexplained: all 150 tasks succeeded" in proc.stdout, output


def test_scoter_chaos_refuses_an_unknown_executor() -> None:
    command = [sys.executable, "-m", "scoter", "chaos", "--executor", "fibers"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
