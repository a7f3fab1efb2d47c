"""The key-value steps of the Redis storages (`scoter.storage.keyvalue`), standalone and
Cluster alike: a string key `P:data:<key>` per value, each step one command (SET, SET NX,
GET, GETDEL, DEL), expiry Redis's own (PX). On a Cluster each key lives on its own slot."""

from __future__ import annotations

import re
from typing import Any

PATTERN_SPECIALS = re.compile(r"([*?\[\]\\])")


class RedisData:
    """The key-value steps of `RedisStorage` (and so `RedisClusterStorage`)."""

    client: Any
    prefix: str

    def _data_key(self, key: str) -> str:
        return f"{self.prefix}:data:{key}"

    def put_data(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.client.set(self._data_key(key), value, px=_ms(ttl))

    def put_data_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        return bool(self.client.set(self._data_key(key), value, px=_ms(ttl), nx=True))

    def peek_data(self, key: str) -> bytes | None:
        value = self.client.get(self._data_key(key))
        return None if value is None else bytes(value)

    def pop_data(self, key: str) -> bytes | None:
        value = self.client.getdel(self._data_key(key))
        return None if value is None else bytes(value)

    def delete_data(self, key: str) -> bool:
        return int(self.client.delete(self._data_key(key))) == 1

    def flush_data(self) -> int:
        """SCAN for the keys (every primary of a Cluster), then DEL each."""
        match = PATTERN_SPECIALS.sub(r"\\\1", self._data_key("")) + "*"
        return sum(int(self.client.delete(k)) for k in self.client.scan_iter(match, count=1000))


def _ms(ttl: float | None) -> int | None:
    """Milliseconds for PX, at least 1 (None: no expiry)."""
    return None if ttl is None else max(1, round(ttl * 1000))
