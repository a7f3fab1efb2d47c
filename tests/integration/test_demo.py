"""`scoter demo` end to end: real consumer processes, a SIGTERM and a SIGKILL, nothing lost."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_loses_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scoter", "demo", "--tasks", "60", "--consumers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    lost = re.findall(r"^\W*lost\W+(\d+)\W*$", proc.stdout, re.MULTILINE)
    assert lost == ["0"], output
    assert "nothing lost" in proc.stdout, output
    assert re.search(r"SIGTERM'd\W+consumer 1 \(pid \d+\): exit code 0", proc.stdout), output
