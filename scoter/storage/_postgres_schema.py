"""The PostgreSQL schema of one scoter: its queries, rendered for a schema name, and the
numbered migrations that create or upgrade it (scoter/storage/migrations/postgres)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from scoter.exceptions import ConfigurationError, SchemaVersionError
from scoter.storage._sql import load_queries

SQL = load_queries(
    "postgres.sql", "postgres_time.sql", "postgres_coordination.sql", "postgres_flows.sql",
    "postgres_data.sql",
)  # fmt: skip
"""The named queries: the lifecycle and inspection, then revocation, coordination, flows,
key-value data."""
FRAGMENTS = ("history", "info_columns", "lock_held")
"""Queries of postgres.sql that are parts of others, which name them in braces."""
MIGRATION_FILE = re.compile(r"(\d{4})_\w+\.sql")

Connection = psycopg.Connection[Any]


class SchemaError(SchemaVersionError):
    """The database holds a scoter schema of another version than this scoter's."""


class SchemaMissing(ConfigurationError):
    """The database holds no scoter schema, and the caller may not create it (a read)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The numbered migrations in scoter/storage/migrations/postgres, oldest first."""
    folder = resources.files("scoter.storage").joinpath("migrations/postgres")
    found = [
        Migration(int(match[1]), entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if (match := MIGRATION_FILE.fullmatch(entry.name))
    ]
    return sorted(found, key=lambda m: m.version)


MIGRATIONS = migrations()
LATEST = MIGRATIONS[-1].version


def render(schema: str) -> dict[str, str]:
    """The named queries for one schema, with the fragments they name in braces (comments left
    out), ack_many_and_claim with the claim inside, rescue and crash with the crash rule."""
    queries = {name: sql.rstrip(";").replace("{schema}", schema) for name, sql in SQL.items()}
    for fragment in FRAGMENTS:
        lines = queries.pop(fragment).splitlines()
        text = "\n".join(line for line in lines if not line.startswith("--"))
        queries = {name: sql.replace(f"{{{fragment}}}", text) for name, sql in queries.items()}
    combined = queries["ack_many_and_claim"].replace("{claim}", queries["claim"])
    queries["ack_many_and_claim"] = combined
    for name in ("rescue", "crash"):
        queries[name] = queries[name].replace("{crash_rule}", queries["crash_rule"])
    return queries


def fetch(
    conn: Connection, query: str, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    with conn.cursor(row_factory=tuple_row) as cursor:
        return cursor.execute(query, params).fetchall()


class Schema:
    """One schema's queries and version: checked before first use, migrated on demand."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sql = render(name)

    def check(self, conn: Connection, migrate: bool, *, create: bool, url: str) -> None:
        """Create the schema if there is none (unless not `create`: a read); refuse one at
        another version unless `migrate` (an older one is then upgraded)."""
        version = self.version(conn)
        self.refuse_newer(version)
        if version == 0 and not create:
            raise SchemaMissing(
                f"no scoter schema {self.name!r} at {url}: run `scoter migrate APP` "
                "(a worker or a producer creates it too)"
            )
        if version and version < LATEST and not migrate:
            raise SchemaError(
                f"the scoter schema {self.name!r} is at version {version}, this scoter needs "
                f"{LATEST}: run `scoter migrate APP` (or open the storage with migrate=True)"
            )
        if version < LATEST:
            self.apply(conn)

    def refuse_newer(self, version: int) -> None:
        if version > LATEST:
            raise SchemaError(
                f"the scoter schema {self.name!r} is at version {version}, newer than this "
                f"scoter knows ({LATEST}): upgrade scoter"
            )

    def version(self, conn: Connection) -> int:
        table = f"{self.name}.migrations"
        installed = fetch(conn, self.sql["installed"], {"table": table})[0][0]
        return int(fetch(conn, self.sql["version"])[0][0]) if installed else 0

    def apply(self, conn: Connection) -> list[str]:
        """Apply the pending migrations in one transaction, one process at a time."""
        with conn.transaction():
            conn.execute(self.sql["lock"], {"key": f"scoter.migrate.{self.name}"})
            conn.execute(self.sql["bootstrap"])
            version = int(fetch(conn, self.sql["version"])[0][0])
            pending = [m for m in MIGRATIONS if m.version > version]
            for migration in pending:
                conn.execute(migration.sql.replace("{schema}", self.name))
                params = {"version": migration.version, "name": migration.name}
                conn.execute(self.sql["record_migration"], params)
        return [m.name for m in pending]
