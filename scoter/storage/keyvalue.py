"""The storage contract's key-value steps: small values shared by every process of a storage,
by key (what Huey's `put`, `get`, `put_if_empty` and `delete` keep). `Storage` (base.py)
derives from `KeyValue`; a backend that keeps no such data leaves the defaults, which raise.

A key is any string (its own namespace: no task, lock or result shares it); a value is bytes.
A value stored with a `ttl` is gone once that many seconds passed (on the server's clock
where there is one); until its key is written, popped, deleted or flushed, an expired value
may still take space, never a read.
"""

from __future__ import annotations

from scoter.exceptions import ConfigurationError


class KeyValue:
    """The key-value steps of the storage contract (see `scoter.storage.base.Storage`)."""

    def _no_data(self) -> ConfigurationError:
        return ConfigurationError(
            f"{type(self).__name__} keeps no key-value data (put_data, pop_data, ...): use "
            "memory://, sqlite://, redis://, redis+cluster:// or postgresql:// storage"
        )

    def put_data(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value` under `key`, replacing any value, for `ttl` seconds (None: until
        deleted). Atomic."""
        raise self._no_data()

    def put_data_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store `value` under `key` unless a value (not expired) is stored there; returns
        whether it stored. Atomic across processes: of callers racing for an empty key, one
        stores."""
        raise self._no_data()

    def peek_data(self, key: str) -> bytes | None:
        """The value stored under `key`, or None. Read only."""
        raise self._no_data()

    def pop_data(self, key: str) -> bytes | None:
        """The value stored under `key`, deleted in the same atomic step, or None: of callers
        racing for one value, one gets it."""
        raise self._no_data()

    def delete_data(self, key: str) -> bool:
        """Delete the value under `key`; whether one (not expired) was stored."""
        raise self._no_data()

    def flush_data(self) -> int:
        """Delete every key's value; returns how many were stored (expired ones may count).
        Not atomic as a whole on a Redis Cluster (one node at a time)."""
        raise self._no_data()
