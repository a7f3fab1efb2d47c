"""Stored data as safe text: control characters shown as escapes, never obeyed.

Task names, ids, queues, reasons and error messages come from storage, and so from whoever
enqueued them. Printed raw, a newline in one forges a log line and an escape sequence drives
the terminal; `printable` shows such characters as Python escapes (`\\n`, `\\x1b`, `\\u202e`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import unicodedata

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories shown as escapes: controls (newline, ESC, DEL, C1), format characters
(bidi overrides, zero-width joiners), lone surrogates, and line and paragraph separators."""
KEPT_IN_TEXT = frozenset("\n\t")
"""Kept as they are by `printable(..., lines=True)`: what a traceback is made of."""


def printable(value: object, *, lines: bool = False) -> str:
    """`str(value)` with every control and format character shown as its escape.

    :param lines: keep newlines and tabs, for multi-line text shown as such (a traceback in
        `scoter show`); never for a log line or a table cell.
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(_visible(c, lines) for c in text)


def _visible(char: str, lines: bool) -> str:
    if (lines and char in KEPT_IN_TEXT) or unicodedata.category(char) not in HIDDEN_CATEGORIES:
        return char
    return char.encode("unicode_escape").decode("ascii")


def one_line(exc: BaseException) -> str:
    """An exception as `TypeName: message` on one line, safe to print (redis-py 8's repr of
    its errors names only their category: `network:ConnectionError`)."""
    text = " ".join(str(exc).split())
    return printable(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


class LineFormatter(logging.Formatter):
    """A formatter whose records each start one line and own every line up to the next: any
    further line of a record (a traceback, a message another library logged with a newline)
    is indented, every kind of line break (\\r, \\u2028, ...) becomes such a newline, and
    other control characters show as escapes: nothing can pass for a record of its own or
    drive the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if text.isprintable():
            return text
        return "\n    ".join(printable(line) for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: time (UTC, ISO 8601), level, logger,
    message, a task event's fields when the record reports one (`event`, `task_id`, `task`,
    `queue`, `attempt`, ...; see scoter.consumer.events) and any traceback. Every control
    character and non-ASCII character is escaped by JSON, so a value can never end its line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "task_event", None)
        if event is not None:
            entry.update(event.fields())
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
