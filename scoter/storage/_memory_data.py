"""The key-value steps of the memory storage (`scoter.storage.keyvalue`): a dict under the
storage's one lock."""

from __future__ import annotations

import threading
import time


class MemoryData:
    """The key-value steps of `MemoryStorage`, which mixes this in."""

    _cond: threading.Condition
    _data: dict[str, tuple[bytes, float | None]]
    """key -> (value, when it expires or None)."""

    def _live(self, key: str) -> bytes | None:
        """The value under `key` unless it expired (then it is dropped); under the lock."""
        stored = self._data.get(key)
        if stored is None:
            return None
        value, expires = stored
        if expires is not None and expires <= time.time():
            del self._data[key]
            return None
        return value

    def put_data(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._cond:
            self._data[key] = (value, None if ttl is None else time.time() + ttl)

    def put_data_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        with self._cond:
            if self._live(key) is not None:
                return False
            self.put_data(key, value, ttl)
            return True

    def peek_data(self, key: str) -> bytes | None:
        with self._cond:
            return self._live(key)

    def pop_data(self, key: str) -> bytes | None:
        with self._cond:
            value = self._live(key)
            self._data.pop(key, None)
            return value

    def delete_data(self, key: str) -> bool:
        return self.pop_data(key) is not None

    def flush_data(self) -> int:
        with self._cond:
            count = len(self._data)
            self._data.clear()
            return count
