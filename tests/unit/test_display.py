"""Stored data as text: control characters escaped for terminals and logs (scoter.display)."""

from __future__ import annotations

import logging
import sys
import unicodedata

import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings
from hypothesis import strategies as st

from scoter.display import HIDDEN_CATEGORIES, LineFormatter, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("billing.invoice", "billing.invoice"),
        ("café:naïve/日本", "café:naïve/日本"),  # letters of any script stay
        ("a\u00a0b", "a\u00a0b"),  # a no-break space is a space
        ("report[/]", "report[/]"),  # markup is the terminal's business (cli.shown)
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
        ("\x00\x7f\x85", "\\x00\\x7f\\x85"),  # NUL, DEL, C1's next-line
        ("\u202eevil\u200d", "\\u202eevil\\u200d"),  # bidi override, zero-width joiner
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line and paragraph separators
        (42, "42"),
    ],
)
def test_printable_escapes_controls_and_keeps_text(raw: object, shown: str) -> None:
    assert printable(raw) == shown


def test_printable_lines_keeps_newlines_and_tabs_only() -> None:
    text = 'Traceback:\n\tFile "x"\nValueError: \x1b[31mred\r'
    assert printable(text, lines=True) == 'Traceback:\n\tFile "x"\nValueError: \\x1b[31mred\\r'


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_printable_output_has_no_hidden_character_and_no_line_break(text: str) -> None:
    shown = printable(text)
    assert not any(unicodedata.category(c) in HIDDEN_CATEGORIES for c in shown)
    assert len(shown.splitlines()) <= 1


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("scoter.consumer", logging.ERROR, __file__, 1, message, args, exc_info)


def test_line_formatter_indents_every_further_line_of_a_record() -> None:
    formatter = LineFormatter("%(levelname)s %(message)s")
    text = formatter.format(_record("a %s", "b\nERROR forged\r\nERROR again\u2028ERROR third"))
    assert text.splitlines() == [
        "ERROR a b",
        "    ERROR forged",
        "    ERROR again",
        "    ERROR third",
    ]


def test_line_formatter_keeps_a_traceback_readable() -> None:
    text = LineFormatter("%(levelname)s %(message)s").format(_record("failed", exc=True))
    lines = text.splitlines()
    assert lines[0] == "ERROR failed"
    assert lines[1] == "    Traceback (most recent call last):"
    assert lines[-2:] == ["    ValueError: boom", "    second line"]
    assert all(line.startswith("    ") for line in lines[1:])


def test_line_formatter_escapes_control_sequences_and_leaves_plain_records_alone() -> None:
    formatter = LineFormatter("%(message)s")
    assert formatter.format(_record("task %s", "\x1b[2Jx")) == "task \\x1b[2Jx"
    assert formatter.format(_record("task %s done", "abc")) == "task abc done"
