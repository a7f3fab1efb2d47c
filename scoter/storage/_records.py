"""Reading stored records field by field (DESIGN G11: one bad record is that record's problem).

A backend reads a record through `Fields`, which checks each field's type and range and notes
what is wrong instead of raising. A claim quarantines a task whose fields do not hold (dead,
reason CORRUPT, the problems as its error); inspection shows what it could read, with the
problems in `TaskInfo.corrupt`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from scoter.states import CORRUPT, State

INT_MAX = 2**31 - 1
COUNTER_MAX = INT_MAX - 1
"""The most a counter (attempts, errors, interruptions, crashes) may hold before a claim or a
settling write adds one: that still fits PostgreSQL's integer, and every backend agrees."""
SHOWN = 60
"""Characters of a bad value quoted in a problem."""
AFTER_CORRUPT = (
    "it cannot run as stored: enqueue the task again with the same id (which replaces the "
    "record), or `scoter dead purge APP ID`"
)
"""What to do about a quarantined task: the end of its error."""


def shown(value: object) -> str:
    """A bad value, short and printable: for a problem's text."""
    if value is None:
        return "missing"
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def printable(text: str) -> str:
    """`text` with undecodable bytes (surrogate escapes) shown as U+FFFD."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def is_clean(text: str) -> bool:
    """Whether `text` holds only real characters (no undecodable bytes, as SQLite's text
    factory leaves them)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def last_line(text: str | None) -> str | None:
    """The last line of an error's text (its exception, after the traceback), cut to 200
    characters: an attempt's short detail."""
    if not text:
        return None
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else None


def corrupt_error(problems: list[str]) -> str:
    """The error of a quarantined task: what was wrong, and what to do."""
    return f"corrupt record: {'; '.join(problems)}; {AFTER_CORRUPT}"


class Fields:
    """One stored record's fields by name. Each read checks one field, returns it (or a
    stand-in showing what could be read) and notes a problem when it is not as it should be.

    `encoded`: every value is bytes (a Redis hash), numbers and text are parsed from them.
    """

    def __init__(self, values: Mapping[str, Any], *, encoded: bool = False) -> None:
        self.values = values
        self.encoded = encoded
        self.problems: list[str] = []

    @property
    def corrupt(self) -> str | None:
        """The problems found so far, in one line; None when there are none."""
        return "; ".join(self.problems) or None

    def _bad(self, name: str, value: object, want: str) -> None:
        self.problems.append(f"{name} is {shown(value)}, not {want}")

    def text(self, name: str) -> str:
        """A required text field."""
        value = self.optional_text(name)
        if value is None:
            self._bad(name, None, "text")
            return ""
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bytes) and self.encoded:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                self._bad(name, value, "UTF-8 text")
                return value.decode("utf-8", "replace")
        if isinstance(value, str):
            if is_clean(value):
                return value
            self._bad(name, value, "UTF-8 text")
            return printable(value)
        self._bad(name, value, "text")
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    def blob(self, name: str) -> bytes:
        """A required bytes field."""
        value = self.optional_blob(name)
        if value is None:
            self._bad(name, None, "bytes")
            return b""
        return value

    def optional_blob(self, name: str) -> bytes | None:
        value = self.values.get(name)
        if value is None or isinstance(value, bytes):
            return value
        self._bad(name, value, "bytes")
        return str(value).encode("utf-8", "surrogateescape")

    def integer(
        self, name: str, low: int = -(2**63), high: int = 2**63 - 1, default: int | None = None
    ) -> int:
        """A whole number from `low` to `high`; `default` stands for an absent one (else
        absent is a problem)."""
        value = self.values.get(name)
        if value is None and default is not None:
            return default
        number = self._whole(value)
        if number is None or not low <= number <= high:
            want = "a whole number" if number is None else f"from {low} to {high}"
            self._bad(name, value, want)
            return default or 0
        return number

    def counter(self, name: str, absent_is_zero: bool = False) -> int:
        """A counter: from 0 to COUNTER_MAX."""
        return self.integer(name, 0, COUNTER_MAX, 0 if absent_is_zero else None)

    def _whole(self, value: object) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, bytes) and self.encoded:  # decimal, as the scripts write it
            text = value.decode("ascii", "replace")
            try:
                number = int(text)
            except ValueError:
                return None
            return number if str(number) == text else None
        return None

    def time(self, name: str, unit: float = 1.0) -> float | None:
        """A finite number of `unit` seconds (µs: 1e-6) since the epoch, as seconds; None
        when absent."""
        value = self.values.get(name)
        if value is None:
            return None
        number = self._whole(value) if self.encoded else value
        if isinstance(number, bool) or not isinstance(number, int | float):
            self._bad(name, value, "a time")
            return None
        seconds = number * unit
        if not math.isfinite(seconds):
            self._bad(name, value, "a finite time")
            return None
        return float(seconds)

    def state(self) -> State:
        """The state; one this scoter does not know reads as dead (its task cannot run)."""
        value = self.optional_text("state")
        try:
            return State(value)
        except ValueError:
            self._bad("state", value, "a known state")
            return State.DEAD

    def progress(self, name: str = "progress") -> tuple[int, int] | None:
        """(done, total): stored as a list of two, or as text "[done, total]" or "done,total";
        None when absent or empty."""
        value = self.values.get(name)
        pair: object = value
        if isinstance(value, bytes):
            value = pair = value.decode("utf-8", "replace")
        if isinstance(value, str):
            if not value:
                return None
            try:
                pair = json.loads(value) if value.startswith("[") else value.split(",")
            except ValueError:
                pair = None
        if pair is None:
            return None
        if isinstance(pair, list | tuple) and len(pair) == 2:
            done, total = (_number(p) for p in pair)
            if done is not None and total is not None:
                return done, total
        self._bad(name, value, "two whole numbers")
        return None

    def history(self, name: str = "history") -> list[dict[str, object]]:
        """A JSON list of attempts (already decoded where the backend stores JSON); an
        unreadable one is one `corrupt` entry quoting it."""
        value = self.values.get(name)
        entries: object = value
        if isinstance(value, str | bytes):
            try:
                entries = json.loads(value if isinstance(value, str) else value.decode("utf-8"))
            except (ValueError, UnicodeDecodeError, RecursionError):
                entries = None
        if value is None and self.encoded:
            return []
        if not isinstance(entries, list):
            self._bad(name, value, "a JSON list")
            return [{"outcome": CORRUPT, "detail": f"unreadable history: {shown(value)}"}]
        odd = [i for i, entry in enumerate(entries) if not isinstance(entry, dict)]
        if odd:
            self.problems.append(f"{name} entries {odd} are not attempts")
        return [_entry(entry) for entry in entries]


def _number(value: object) -> int | None:
    """A whole number from an int or its text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _entry(entry: object) -> dict[str, object]:
    """One history entry as inspection reads it: a dict of printable text and numbers."""
    if not isinstance(entry, dict):
        text = json.dumps(entry, default=repr)
        return {"outcome": CORRUPT, "detail": f"not an attempt: {text[:SHOWN]}"}
    return {str(k): printable(v) if isinstance(v, str) else v for k, v in entry.items()}
