"""The systems under test. scoter runs on each of its backends; each peer on the backend it
shares with scoter (the same Redis, the same PostgreSQL, a SQLite file for SqliteHuey)."""

from __future__ import annotations

from bench.systems.base import System
from bench.systems.peers import PEERS
from bench.systems.scoter import SCOTER

SYSTEMS: list[System] = [*SCOTER, *PEERS]
BACKENDS = ("sqlite", "redis", "postgres")

__all__ = ["BACKENDS", "SYSTEMS", "System"]
