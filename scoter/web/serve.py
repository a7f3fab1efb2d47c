"""`scoter dashboard APP`: the dashboard on uvicorn."""

from __future__ import annotations

import ipaddress
import logging

from scoter.app import Scoter
from scoter.web.app import create_app

log = logging.getLogger("scoter.web")


def serve(app: Scoter, *, host: str, port: int, token: str | None, refresh: float) -> None:
    """Serve the dashboard of `app` until SIGINT or SIGTERM."""
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError("the dashboard needs uvicorn: pip install 'scoter[web]'") from exc
    web = create_app(app, token=token, refresh=refresh)
    mode = "retry and purge need the token" if token else "read-only (no --token)"
    log.info("dashboard of %s on http://%s:%d/ — %s", app.name, _url_host(host), port, mode)
    if not _loopback(host):
        log.warning("the dashboard listens on %s: anyone who reaches it reads task names, "
                    "arguments and tracebacks; put it behind a proxy that authenticates",
                    host)  # fmt: skip
    uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
