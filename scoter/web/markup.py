"""HTML that escapes every value put into it.

Stored data is hostile (docs/security.md, "What scoter prints"): a task's name, id, queue, error
or traceback may hold markup. Pages are built with `h(template, **values)`, which HTML-escapes
every value unless it is `Safe` (HTML built by `h` itself); templates are literals of this
package. The page's Content-Security-Policy forbids inline scripts too, as a second line.
"""

from __future__ import annotations

import datetime as dt
import html
import string
import urllib.parse
from collections.abc import Iterable
from typing import Any


class Safe(str):
    """HTML to insert as it is: made by `h` or `join` only."""

    __slots__ = ()


class _Escaping(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        text = format(value, format_spec)
        return text if isinstance(value, Safe) else html.escape(text, quote=True)


_FORMATTER = _Escaping()


def h(template: str, /, **values: object) -> Safe:
    """`template` (a literal) with each `{name}` replaced by its value, escaped unless Safe."""
    return Safe(_FORMATTER.vformat(template, (), values))


def join(parts: Iterable[Safe]) -> Safe:
    return Safe("".join(parts))


def quoted(value: str) -> str:
    """`value` as one path segment of a URL (then escaped as any value when put in HTML)."""
    return urllib.parse.quote(value, safe="")


def when(timestamp: float | None) -> str:
    """A time as this host's local date and time; empty for none."""
    if timestamp is None:
        return ""
    try:
        return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):  # a corrupt record's time
        return "?"


def span(seconds: float) -> str:
    """A duration, short: 45s, 12m 5s, 3h 20m, 2d 4h."""
    s = int(abs(seconds))
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if s >= size:
            return f"{s // size}{unit} {s % size // sub_size}{sub}"
    return f"{s // 60}m {s % 60}s" if s >= 60 else f"{s}s"


def ago(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return ""
    return f"{span(now - timestamp)} ago" if timestamp <= now else f"in {span(timestamp - now)}"


def last_line(text: str | None) -> str:
    """An error's last line: for a traceback, the exception."""
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


def preview(data: bytes | None, limit: int = 4000) -> str | None:
    """Stored bytes (a payload, a result) as text when they are UTF-8, else their size."""
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(data)} bytes, not text)"
    return text if len(text) <= limit else text[:limit] + f"… ({len(data)} bytes)"
