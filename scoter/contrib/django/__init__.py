"""scoter in a Django project: the app from settings, tasks.py found in every installed app,
`manage.py scoter_worker`, database connections closed around each task, and `enqueue_in`
on Django's own PostgreSQL connection, inside `transaction.atomic()`.

    INSTALLED_APPS = [..., "scoter.contrib.django"]
    SCOTER = {"name": "shop", "url": "postgresql://...", "worker": {"workers": 4}}

    # shop/tasks.py
    from scoter.contrib.django import app

    @app.task(retries=3)
    def send_receipt(order_id): ...

`SCOTER` takes `Scoter(...)`'s options (`name`, `url`, `immediate`, `serializer`,
`secret_keys`, `result_ttl`, ...), plus `worker` (the default options of `scoter_worker`) and
`autodiscover` (default True). Without `url`: $SCOTER_URL, else Django's default database
when it is PostgreSQL (so `enqueue_in` shares its transactions), else sqlite:///<name>.db.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections

from scoter.app import Scoter
from scoter.context import TaskContext
from scoter.exceptions import ConfigurationError
from scoter.result import Result
from scoter.task import Message, Task

APP_OPTIONS = (
    "name", "url", "immediate", "default_queue", "serializer", "secret_keys", "result_ttl",
    "enqueue_timeout", "max_message_bytes", "max_result_bytes",
)  # fmt: skip
POSTGRES_ENGINES = ("django.db.backends.postgresql",)
_app: Scoter | None = None


def config() -> dict[str, Any]:
    """The SCOTER setting (a dict; empty when not set)."""
    value = getattr(settings, "SCOTER", None) or {}
    if not isinstance(value, dict):
        raise ConfigurationError(f"settings.SCOTER must be a dict of Scoter options, not {value!r}")
    return value


def get_app() -> Scoter:
    """The project's app, made from settings on first use."""
    global _app
    if _app is None:
        _app = make_app(config())
    return _app


def make_app(options: dict[str, Any]) -> Scoter:
    unknown = set(options) - {*APP_OPTIONS, "worker", "autodiscover"}
    if unknown:
        raise ConfigurationError(
            f"settings.SCOTER has unknown key(s) {sorted(unknown)}: use {', '.join(APP_OPTIONS)}, "
            "worker, autodiscover"
        )
    kwargs = {k: options[k] for k in APP_OPTIONS if k in options}
    kwargs.setdefault("name", "scoter")
    if "url" not in kwargs and not os.environ.get("SCOTER_URL") and not kwargs.get("immediate"):
        kwargs["url"] = database_url()
    app = Scoter(**kwargs)
    app.hooks.pre_execute(_close_connections)
    app.hooks.post_execute(_close_connections)
    return app


def database_url(alias: str = "default") -> str | None:
    """A postgresql:// URL of Django's database `alias` when it is PostgreSQL, else None."""
    db = settings.DATABASES.get(alias, {})
    if db.get("ENGINE") not in POSTGRES_ENGINES:
        return None
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    at = "@" if user or password else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgresql://{user}{password}{at}{db.get('HOST') or 'localhost'}{port}/{db['NAME']}"


def _close_connections(ctx: TaskContext, *_: Any) -> None:
    """Before and after each task: close connections that are stale or broken, as Django
    does around each request (a worker's connection otherwise outlives CONN_MAX_AGE)."""
    if _app is None or not _app.immediate:
        close_old_connections()


def enqueue_in(*calls: Message | Iterable[Message], using: str = "default") -> list[Result[Any]]:
    """Store `calls` (`task.s(...)`) in Django's current transaction on database `using`:
    they exist only once it commits, and a rollback leaves no trace.

        with transaction.atomic():
            order = Order.objects.create(...)
            enqueue_in(send_receipt.s(order.id))

    Needs PostgreSQL storage on that same database, and Django's psycopg 3 backend.
    """
    messages = [m for c in calls for m in ([c] if isinstance(c, Message) else c)]
    connection = connections[using]
    connection.ensure_connection()
    raw = connection.connection
    if type(raw).__module__.split(".")[0] != "psycopg":
        raise ConfigurationError(
            f"enqueue_in needs Django's psycopg 3 backend on {using!r}, not {type(raw)!r}: "
            "pip install 'psycopg[binary]' (Django picks psycopg 3 over psycopg2 when present)"
        )
    return get_app().enqueue_in(raw, messages)


def __getattr__(name: str) -> Any:
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Task", "app", "config", "database_url", "enqueue_in", "get_app", "make_app"]
