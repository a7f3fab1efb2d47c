"""Huey's task registry (`huey._registry`) and its `Message`, over the Huey app's tasks.

Huey apps and libraries reach for `huey._registry` to list the periodic tasks, to look a
task class up by name, or to turn a Task into a Message and back (`huey.serialize_task`).
Here the registry is a view of the app's registered tasks (`huey.wrappers`, by scoter name,
`module.function`): registering goes through `@huey.task()` as always.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from scoter.huey.exceptions import HueyException

if TYPE_CHECKING:
    from scoter.huey.api import Huey
    from scoter.huey.tasks import Task, TaskWrapper


class Message(NamedTuple):
    """A task call as data (Huey's fields): what `serialize_task` pickles."""

    id: str
    name: str
    eta: Any
    retries: int
    retry_delay: float
    priority: int | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    on_complete: Message | None
    on_error: Message | None
    expires: Any
    expires_resolved: Any
    timeout: float | None
    chord_config: Any
    retry_backoff: float


class Registry:
    """The tasks of one Huey app, by the name scoter stores (`module.function`)."""

    def __init__(self, huey: Huey) -> None:
        self._huey = huey

    def task_to_string(self, task_class: type[Task]) -> str:
        wrapper = task_class.wrapper
        if wrapper is None:
            return f"{task_class.__module__}.{task_class.__name__}"
        return wrapper.scoter_name

    def register(self, task_class: type[Task]) -> bool:
        """Tasks register with `@huey.task()`; this says whether `task_class` is one."""
        return self._wrapper(self.task_to_string(task_class)) is not None

    def unregister(self, task_class: type[Task]) -> bool:
        wrapper = self._wrapper(self.task_to_string(task_class))
        return wrapper is not None and wrapper.unregister()

    def string_to_task(self, task_str: str) -> type[Task]:
        wrapper = self._wrapper(task_str)
        if wrapper is None:
            raise HueyException(f"{task_str} not found in TaskRegistry")
        return wrapper.task_class

    @property
    def periodic_tasks(self) -> list[Task]:
        """One Task of each periodic task (its `validate_datetime` says when it runs)."""
        return [
            w.task_class()
            for w in list(self._huey.wrappers.values())
            if "validate_datetime" in w.settings
        ]

    def create_message(self, task: Task) -> Message:
        """The Message of a Task; HueyException when its task is not registered."""
        name = self.task_to_string(type(task))
        self.string_to_task(name)
        if task.kwargs and task.kwargs.get("task") is task:  # a context task's own
            task.kwargs.pop("task")
        return Message(
            task.id, name, task.eta, task.retries, task.retry_delay, task.priority,
            tuple(task.args), dict(task.kwargs),
            None if task.on_complete is None else self.create_message(task.on_complete),
            None if task.on_error is None else self.create_message(task.on_error),
            task.expires, getattr(task, "expires_resolved", None), task.timeout,
            None, task.retry_backoff,
        )  # fmt: skip

    def create_task(self, message: Message) -> Task:
        """The Task of a Message; HueyException when its task is not registered (any more)."""
        cls = self.string_to_task(message.name)
        task = cls(
            message.args, message.kwargs, id=message.id, eta=message.eta,
            retries=message.retries, retry_delay=message.retry_delay,
            priority=message.priority, expires=message.expires, timeout=message.timeout,
            retry_backoff=message.retry_backoff,
            on_complete=None if message.on_complete is None
            else self.create_task(message.on_complete),
            on_error=None if message.on_error is None else self.create_task(message.on_error),
        )  # fmt: skip
        task.expires_resolved = message.expires_resolved
        return task

    def _wrapper(self, name: str) -> TaskWrapper | None:
        return self._huey.wrappers.get(name)
