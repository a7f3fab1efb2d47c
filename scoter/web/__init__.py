"""The web dashboard: `scoter dashboard APP`, or `create_app(app, token=...)` to mount in a
Starlette or FastAPI app. Needs the `web` extra (Starlette, uvicorn)."""

from __future__ import annotations

try:
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the dashboard needs Starlette and uvicorn: pip install 'scoter[web]'"
    ) from exc

from scoter.web.app import create_app
from scoter.web.serve import serve

__all__ = ["create_app", "serve"]
