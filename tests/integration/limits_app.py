"""A task whose result is as large as asked, added to integration_app's app (the size limits).

Run with `scoter worker limits_app:app`.
"""

from __future__ import annotations

from integration_app import app

__all__ = ["app", "sized"]


@app.task
def sized(size: int) -> str:
    """A result of `size` characters (its JSON two bytes more)."""
    return "x" * size
