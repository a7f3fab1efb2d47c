"""Load the named queries of a backend's .sql file ("-- name: X" starts each block)."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(filename: str) -> dict[str, str]:
    """Map each query name in scoter/storage/`filename` to its SQL text."""
    text = resources.files("scoter.storage").joinpath(filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {name: sql.strip() for name, sql in zip(parts[1::2], parts[2::2], strict=True)}
