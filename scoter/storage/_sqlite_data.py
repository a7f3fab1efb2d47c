"""The key-value steps of the SQLite storage (`scoter.storage.keyvalue`; the queries and the
table are in sqlite_data.sql). Each step is one statement, atomic across the file's
processes."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any


class SQLiteData:
    """The key-value steps of `SQLiteStorage`, which mixes this in."""

    if TYPE_CHECKING:

        def _read(self, query: str, params: dict[str, Any]) -> tuple[sqlite3.Cursor, list[Any]]: ...

        def _write(
            self, query: str, params: dict[str, Any], *, lenient: bool = False
        ) -> tuple[list[Any], int]: ...

    def put_data(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._write("data_put", _row(key, value, ttl))

    def put_data_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        return self._write("data_put_if_empty", _row(key, value, ttl))[1] == 1

    def peek_data(self, key: str) -> bytes | None:
        rows = self._read("data_peek", {"key": key, "now": time.time()})[1]
        return bytes(rows[0][0]) if rows else None

    def pop_data(self, key: str) -> bytes | None:
        rows = self._write("data_pop", {"key": key, "now": time.time()})[0]
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def delete_data(self, key: str) -> bool:
        return self.pop_data(key) is not None

    def flush_data(self) -> int:
        return self._write("data_flush", {})[1]


def _row(key: str, value: bytes, ttl: float | None) -> dict[str, Any]:
    now = time.time()
    return {"key": key, "value": value, "now": now, "expires": None if ttl is None else now + ttl}
