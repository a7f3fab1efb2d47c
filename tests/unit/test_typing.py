"""The types users' code sees, checked by mypy: a `context=True` task is called without its
ctx, an `async def` task's Result holds what the coroutine returns, `with_options(...)` and
`s(...)` check arguments (tests/typing/calls.py marks each error it expects)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

CHECKED = Path(__file__).parent.parent / "typing" / "calls.py"
EXPECTED = re.compile(r"#\s*E:\s*([\w-]+)")
REPORTED = re.compile(r"^[^:]+:(\d+): error: .*\[([\w-]+)\]$")


def expected_errors() -> set[tuple[int, str]]:
    lines = CHECKED.read_text().splitlines()
    return {
        (number, match[1])
        for number, line in enumerate(lines, 1)
        if (match := EXPECTED.search(line))
    }


def test_mypy_reports_exactly_the_marked_errors(tmp_path: Path) -> None:
    out, err, _ = api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(tmp_path), str(CHECKED)]
    )
    reported = {
        (int(match[1]), match[2]) for line in out.splitlines() if (match := REPORTED.match(line))
    }
    assert reported == expected_errors(), out + err
