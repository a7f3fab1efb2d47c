"""procrastinate on $BENCH_POSTGRES: `procrastinate --app=bench.apps.procrastinate_app.app
worker`, bulk through `batch_defer`. The no-op is a sync task (procrastinate runs it on a
thread)."""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

from bench import counter
from bench.settings import ENV_POSTGRES, POSTGRES_URL

app = App(connector=PsycopgConnector(conninfo=os.environ.get(ENV_POSTGRES, POSTGRES_URL)))


@app.task(name="noop")
def noop() -> None:
    counter.incr()


_opened = False


def _open() -> None:
    """Open the app's sync side (for deferring from this producer), once."""
    global _opened
    if not _opened:
        app.open()
        _opened = True


def prepare() -> None:
    """Create procrastinate's schema in the fresh database."""
    _open()
    app.schema_manager.apply_schema()


def enqueue_one() -> None:
    _open()
    noop.defer()


def enqueue_bulk(n: int) -> None:
    _open()
    noop.batch_defer(*({} for _ in range(n)))
