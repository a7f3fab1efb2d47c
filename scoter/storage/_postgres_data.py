"""The key-value steps of the PostgreSQL storage (`scoter.storage.keyvalue`; migration 0008,
the queries in postgres_data.sql). Each step is one statement; times are the server's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


class PostgresData:
    """The key-value steps of `PostgresStorage`, which mixes this in."""

    if TYPE_CHECKING:

        def _rows(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]: ...

        def _rowcount(self, query: str, **params: Any) -> int: ...

    def put_data(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._rowcount("data_put", key=key, value=value, ttl=ttl)

    def put_data_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        return self._rowcount("data_put_if_empty", key=key, value=value, ttl=ttl) == 1

    def peek_data(self, key: str) -> bytes | None:
        rows = self._rows("data_peek", {"key": key})
        return bytes(rows[0][0]) if rows else None

    def pop_data(self, key: str) -> bytes | None:
        rows = self._rows("data_pop", {"key": key})
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def delete_data(self, key: str) -> bool:
        return self.pop_data(key) is not None

    def flush_data(self) -> int:
        return self._rowcount("data_flush")
