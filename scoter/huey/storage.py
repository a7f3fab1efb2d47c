"""Huey's storage classes (`huey.storage`), each mapped onto a scoter backend.

A Huey class (`RedisHuey`, ...) or `storage_class=` names one of these; its constructor
options become a scoter storage URL (`url_for`). The Huey app's `storage` is then scoter's
storage object, whose methods are scoter's lifecycle steps, not Huey's.

| Huey storage | scoter backend |
|---|---|
| MemoryStorage, BlackHoleStorage | memory:// |
| SqliteStorage (filename) | sqlite:///filename (`fsync=True`: synchronous=full) |
| FileStorage (path) | sqlite:///path/huey.db: one file, with scoter's SQLite guarantees |
| Redis*, PriorityRedis*, RedisExpire* | redis://host:port/db (or `url=`) |
| PostgresStorage (dsn or host, ...) | postgresql://... |
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, ClassVar

from scoter.huey.exceptions import ConfigurationError

cysqlite = None
"""Huey's optional cysqlite driver module: scoter's SqliteHuey runs on the standard sqlite3."""


class BaseStorage:
    """A Huey storage class: knows the scoter URL its options stand for."""

    scheme: ClassVar[str] = "memory"

    def __init__(self, name: str = "huey", **storage_kwargs: Any) -> None:
        self.name = name
        self.url = self.url_for(name, **storage_kwargs)

    @classmethod
    def url_for(cls, name: str, **options: Any) -> str:
        """The scoter storage URL for a Huey app `name` with these storage options."""
        return "memory://"


class BlackHoleStorage(BaseStorage):
    """Huey drops everything; scoter keeps the tasks in memory, where nothing consumes them."""


class MemoryStorage(BaseStorage):
    pass


class SqliteStorage(BaseStorage):
    @classmethod
    def url_for(
        cls, name: str, filename: str = "huey.db", fsync: bool | None = None, **_: Any
    ) -> str:
        url = f"sqlite:///{filename}"
        return url + "?synchronous=full" if fsync else url


CySqliteStorage = SqliteStorage


class FileStorage(BaseStorage):
    @classmethod
    def url_for(cls, name: str, path: str = "huey-storage", **_: Any) -> str:
        os.makedirs(path, exist_ok=True)
        return f"sqlite:///{os.path.join(path, 'huey.db')}"


class RedisStorage(BaseStorage):
    @classmethod
    def url_for(
        cls,
        name: str,
        url: str | None = None,
        connection_pool: Any = None,
        host: str | None = None,
        port: int | None = None,
        db: int | None = None,
        password: str | None = None,
        username: str | None = None,
        **_: Any,
    ) -> str:
        if url:
            return url
        if connection_pool is not None:
            params = dict(getattr(connection_pool, "connection_kwargs", {}))
            host, port, db = params.get("host"), params.get("port"), params.get("db")
            password, username = params.get("password"), params.get("username")
        auth = ""
        if password:
            auth = f"{urllib.parse.quote(username or '', safe='')}:"
            auth += f"{urllib.parse.quote(password, safe='')}@"
        return f"redis://{auth}{host or 'localhost'}:{port or 6379}/{db or 0}"


class RedisExpireStorage(RedisStorage):
    pass


class PriorityRedisStorage(RedisStorage):
    pass


class PriorityRedisExpireStorage(RedisStorage):
    pass


class PostgresStorage(BaseStorage):
    @classmethod
    def url_for(
        cls,
        name: str,
        dsn: str | None = None,
        connection: Any = None,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        dbname: str | None = None,
        database: str | None = None,
        **_: Any,
    ) -> str:
        if connection is not None:
            raise ConfigurationError(
                "PostgresHuey(connection=...) cannot be mapped: scoter keeps its own pool; "
                "give dsn='postgresql://user@host/db' instead"
            )
        if dsn:
            if "://" not in dsn:
                raise ConfigurationError(
                    f"PostgresHuey(dsn={dsn!r}): give the dsn as a URL, "
                    "postgresql://user:password@host:5432/db"
                )
            return dsn
        auth = urllib.parse.quote(user or "", safe="")
        if password:
            auth += ":" + urllib.parse.quote(password, safe="")
        at = f"{auth}@" if auth else ""
        return f"postgresql://{at}{host or 'localhost'}:{port or 5432}/{dbname or database or ''}"
