"""Huey's Django integration (`huey.contrib.djhuey`) on scoter: the `HUEY` setting (a dict or
a Huey instance), `run_huey`, and the decorators and functions Huey's module exports.

INSTALLED_APPS gets "scoter.huey.contrib.djhuey" (or "huey.contrib.djhuey" with the alias);
a `huey_class` of "huey.RedisHuey" means scoter.huey's RedisHuey.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction

from scoter.huey.api import Huey
from scoter.huey.tasks import TaskWrapper
from scoter.huey.utils import load_class

DEFAULT_BACKEND = "scoter.huey.RedisHuey"


def default_queue_name() -> str:
    try:
        return str(settings.DATABASES["default"]["NAME"])
    except (AttributeError, KeyError):
        return "huey"


def backend(path: str) -> type[Huey]:
    """The Huey class a `huey_class` setting names ("huey.X" is scoter.huey's X)."""
    if path == "huey" or path.startswith("huey."):
        path = "scoter." + path
    cls = load_class(path)
    if not (isinstance(cls, type) and issubclass(cls, Huey)):
        raise TypeError(f"HUEY['huey_class'] = {path!r} is not a scoter.huey Huey class")
    return cls


def from_settings(config: Any) -> Huey:
    """The Huey app of a HUEY setting: a Huey instance, a dict, or None (RedisHuey)."""
    if isinstance(config, Huey):
        return config
    if config is None:
        return backend(DEFAULT_BACKEND)(default_queue_name())
    options = dict(config)
    name = options.pop("name", default_queue_name())
    cls = backend(options.pop("huey_class", DEFAULT_BACKEND))
    options.update(options.pop("connection", {}) or {})
    options.pop("consumer", None)
    options.setdefault("immediate", settings.DEBUG)
    return cls(name, **options)


HUEY = from_settings(getattr(settings, "HUEY", None))

# Function decorators.
task = HUEY.task
periodic_task = HUEY.periodic_task
lock_task = HUEY.lock_task

# Task management.
enqueue = HUEY.enqueue
restore = HUEY.restore
restore_all = HUEY.restore_all
restore_by_id = HUEY.restore_by_id
revoke = HUEY.revoke
revoke_all = HUEY.revoke_all
revoke_by_id = HUEY.revoke_by_id
is_revoked = HUEY.is_revoked
result = HUEY.result
scheduled = HUEY.scheduled

# Hooks.
on_startup = HUEY.on_startup
on_shutdown = HUEY.on_shutdown
pre_execute = HUEY.pre_execute
post_execute = HUEY.post_execute
signal = HUEY.signal
disconnect_signal = HUEY.disconnect_signal


def close_db(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Close stale database connections before and after `fn` (outside immediate mode)."""

    @wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        if not HUEY.immediate:
            close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            if not HUEY.immediate:
                close_old_connections()

    return inner


def db_task(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], TaskWrapper]:
    def decorator(fn: Callable[..., Any]) -> TaskWrapper:
        wrapper = task(*args, **kwargs)(close_db(fn))
        wrapper.call_local = fn  # type: ignore[method-assign]
        return wrapper

    return decorator


def db_periodic_task(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], TaskWrapper]:
    def decorator(fn: Callable[..., Any]) -> TaskWrapper:
        wrapper = periodic_task(*args, **kwargs)(close_db(fn))
        wrapper.call_local = fn  # type: ignore[method-assign]
        return wrapper

    return decorator


def on_commit_task(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A task enqueued when the current transaction commits (never, if it rolls back); the
    call returns a Result at once. With PostgreSQL storage on Django's own database,
    `scoter.contrib.django.enqueue_in` stores it inside the transaction instead."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        wrapper = task(*args, **kwargs)(close_db(fn))

        @wraps(fn)
        def inner(*a: Any, **k: Any) -> Any:
            call = wrapper.s(*a, **k)
            transaction.on_commit(lambda: HUEY.enqueue(call))
            return HUEY._result_handle(call)

        inner.call_local = fn  # type: ignore[attr-defined]
        return inner

    return decorator
