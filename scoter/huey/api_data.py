"""The Huey app's calls on data rather than tasks: the key-value store (`put`, `get`,
`put_if_empty`, `delete`), tasks as bytes (`serialize_task`, `deserialize_task`), the task
registry (`_registry`) and reading the schedules by hand (`read_periodic`, `read_schedule`).

The key-value calls sit on scoter's storage (`Storage.put_data` and its siblings): one value
per key, shared by every process of the storage, each call atomic (`get` reads and deletes
in one step, so of two processes popping one key, one gets the value).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from scoter.huey import bridge
from scoter.huey.constants import EmptyData
from scoter.huey.registry import Registry
from scoter.huey.utils import to_timestamp, utcnow
from scoter.states import State

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.huey.tasks import Task, TaskWrapper

MESSAGE = b"huey-message"
"""What a signature of `serialize_task`'s bytes says they are (scoter's Signer)."""
LISTING_LIMIT = 1_000_000


class DataCalls:
    """Mixed into `Huey`: the calls this module's docstring lists."""

    if TYPE_CHECKING:
        app: Scoter
        serializer: Any
        utc: bool
        wrappers: dict[str, TaskWrapper]

    @property
    def _registry(self) -> Registry:
        """Huey's task registry: a view of this app's tasks (private in Huey, used by apps)."""
        return Registry(self)  # type: ignore[arg-type]

    # -- key-value ---------------------------------------------------------------------------

    def put(self, key: str, data: Any) -> None:
        """Store `data` under `key` (serialized by the app's serializer), replacing any."""
        self.app.storage.put_data(key, self.serializer.serialize(data))

    def put_result(self, key: str, data: Any) -> None:
        self.put(key, data)

    def put_if_empty(self, key: str, data: Any, ttl: float | None = None) -> bool:
        """Store `data` unless `key` holds a value; True if stored. `ttl`: seconds it is kept."""
        return self.app.storage.put_data_if_empty(key, self.serializer.serialize(data), ttl)

    def get_raw(self, key: str, peek: bool = False) -> Any:
        """The stored bytes of `key`, deleted unless `peek`; EmptyData when none."""
        storage = self.app.storage
        raw = storage.peek_data(key) if peek else storage.pop_data(key)
        return EmptyData if raw is None else raw

    def get(self, key: str, peek: bool = False) -> Any:
        """The value of `key`, deleted as it is read unless `peek` (as in Huey); None when
        none is stored."""
        raw = self.get_raw(key, peek)
        return None if raw is EmptyData else self.serializer.deserialize(raw)

    def delete(self, key: str) -> bool:
        """Delete `key`'s value; True if there was one."""
        return self.app.storage.delete_data(key)

    # -- tasks as bytes ----------------------------------------------------------------------

    def serialize_task(self, task: Task) -> bytes:
        """A task call as bytes (its Message, serialized), signed when the app signs."""
        data: bytes = self.serializer.serialize(self._registry.create_message(task))
        signer = self.app.signer
        return data if signer is None else signer.sign(data, MESSAGE)

    def deserialize_task(self, data: bytes) -> Task:
        """The task call of `serialize_task`'s bytes; an app that signs (`secret_keys`, or a
        SignedSerializer given to the constructor) refuses bytes its keys did not sign, with
        DecodeError, before anything is unpickled."""
        signer = self.app.signer
        if signer is not None:
            data = signer.verify(data, MESSAGE)
        return self._registry.create_task(self.serializer.deserialize(data))

    # -- schedules by hand -------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return utcnow() if self.utc else dt.datetime.now()

    def read_periodic(self, timestamp: dt.datetime | None = None) -> list[Task]:
        """A Task of each periodic task whose schedule matches `timestamp` (default now)."""
        when = self._now() if timestamp is None else timestamp
        return [t for t in self._registry.periodic_tasks if t.validate_datetime(when)]  # type: ignore[attr-defined]

    def read_schedule(self, timestamp: dt.datetime | None = None) -> list[Task]:
        """The scheduled tasks due at `timestamp` (default now), which leave the schedule:
        they are queued (Huey hands them to its caller to enqueue; here none can be lost)."""
        when = to_timestamp(self._now() if timestamp is None else timestamp, self.utc)
        assert when is not None
        storage = self.app.storage
        due = [
            info
            for info in storage.list_tasks(State.SCHEDULED, limit=LISTING_LIMIT)
            if info.eta is not None and info.eta <= when
        ]
        storage.promote(when)
        due.sort(key=lambda info: (info.eta, info.created_at))
        return [bridge.task_of_info(self, info) for info in due]  # type: ignore[arg-type]
