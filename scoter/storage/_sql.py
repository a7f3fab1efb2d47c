"""Load the named queries of a backend's .sql file ("-- name: X" starts each block)."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(*filenames: str) -> dict[str, str]:
    """Map each query name in the files scoter/storage/`filenames` to its SQL text (a name
    stands in one file only)."""
    queries: dict[str, str] = {}
    for filename in filenames:
        text = resources.files("scoter.storage").joinpath(filename).read_text(encoding="utf-8")
        parts = _NAME.split(text)
        for name, sql in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise ValueError(f"query {name!r} stands in two files, the second {filename}")
            queries[name] = sql.strip()
    return queries
