"""What the harness knows of a system: its consumer command, its places, whether it can run."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import settings
from bench.places import Place, fresh, server_problem

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class System:
    """One queue on one backend, e.g. scoter on SQLite or Huey on Redis."""

    name: str
    """The project: scoter, huey, rq, dramatiq, celery, arq, procrastinate."""
    backend: str
    """sqlite, redis or postgres: scoter on a backend is compared with the peers on it."""
    app: str
    """Its module in bench.apps (what producers and consumers import)."""
    package: str
    """The distribution whose version is reported."""
    consumer: tuple[str, ...]
    """The consumer's command line; its program is looked up next to this Python."""
    concurrency: str
    """How the consumer runs tasks at once, in words."""
    bulk: bool = False
    """Whether the peer has a bulk enqueue API (`enqueue_bulk` in its app module)."""
    max_drain: int | None = None
    """Fewer tasks than the run's drain size, for very slow peers (stated in the report)."""
    max_latency: int | None = None
    """Fewer latency tasks, for peers whose idle consumer polls slowly."""
    url_variable: str | None = None
    """An environment variable through which the peer's own CLI reads the server URL."""
    executor: str | None = None
    """The consumer's kind of worker when the row is not the system's usual consumer
    (`process`, `asyncio`): part of the key, e.g. scoter-process-redis."""
    variant: str | None = None
    """A variant of a row measured beside it, part of the key (`metrics`: scoter with its
    Prometheus metrics on, scoter-metrics-sqlite); run only when `--only` names its family
    or key, never by its name alone or by default."""
    groups: tuple[str, ...] = ("default",)
    """The comparisons the row is in: scoter's row in a group is divided by each peer's row in
    the same group on the same backend (`default`: each system's usual consumer)."""
    flush = True
    """Empty the Redis database before each measurement: the peers' keys have fixed names."""

    @property
    def family(self) -> str:
        """The name, with the executor and variant when there are: scoter-process."""
        return "-".join(part for part in (self.name, self.executor, self.variant) if part)

    @property
    def key(self) -> str:
        return f"{self.family}-{self.backend}"

    @property
    def version(self) -> str:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def argv(self) -> list[str]:
        program = BIN / self.consumer[0]
        return [str(program) if program.exists() else self.consumer[0], *self.consumer[1:]]

    def env(self, place: Place) -> dict[str, str]:
        """What the consumer and producers need to find this place."""
        env = {settings.ENV_COUNTER: place.counter.url, settings.ENV_PREFIX: place.prefix}
        if self.backend == "redis":
            env[settings.ENV_REDIS] = place.url
            if self.url_variable:
                env[self.url_variable] = place.url
        elif self.backend == "postgres":
            env[settings.ENV_POSTGRES] = place.url
        return env

    def check(self, root: Path) -> str | None:
        """Why this system cannot run here (not installed, no server), or None."""
        if importlib.util.find_spec(self.package.replace("-", "_")) is None:
            return f"{self.package} is not installed (pip install -e '.[bench]')"
        return server_problem(self.backend)


@dataclass(frozen=True)
class Scoter(System):
    """scoter: the storage URL goes in $BENCH_SCOTER_URL."""

    flush = False
    """scoter's keys live under the place's prefix: no need to empty the Redis database."""

    def env(self, place: Place) -> dict[str, str]:
        prefix = f"?prefix={place.prefix}" if self.backend == "redis" else ""
        return {**super().env(place), settings.ENV_SCOTER_URL: place.url + prefix}

    def check(self, root: Path) -> str | None:
        """The backend's module must import, and enqueue, claim and ack one task."""
        module = f"scoter.storage.{self.backend}"
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"{module} does not import: {exc!r}"[:200]
        problem = server_problem(self.backend)
        if problem:
            return problem
        if self.variant == "metrics" and importlib.util.find_spec("prometheus_client") is None:
            return "prometheus_client is not installed (pip install -e '.[bench]')"
        try:
            with fresh(self.backend, root) as place:
                _smoke(self.env(place)[settings.ENV_SCOTER_URL])
        except Exception as exc:
            return f"scoter on {self.backend} failed its smoke check: {exc!r}"[:200]
        return None


def _smoke(url: str) -> None:
    from scoter.config import storage_from_url
    from scoter.storage.base import NewTask

    storage = storage_from_url(url)
    try:
        task_id = uuid.uuid4().hex
        if storage.enqueue([NewTask(task_id, "smoke", "smoke", b"{}")]) != 1:
            raise RuntimeError("enqueue stored nothing")
        leases = storage.claim(["smoke"], 1, 30.0, "bench-smoke")
        if [lease.id for lease in leases] != [task_id]:
            raise RuntimeError(f"claim returned {leases!r}")
        if not storage.ack(leases[0].token, None, None):
            raise RuntimeError("ack refused")
    finally:
        storage.close()


@dataclass(frozen=True)
class Huey(System):
    """Huey: SqliteHuey on a file of its own, or RedisHuey."""

    def env(self, place: Place) -> dict[str, str]:
        env = super().env(place)
        where = place.url
        if self.backend == "sqlite":
            where = place.url.replace("queue.db", "huey.db")
        env[settings.ENV_HUEY] = where
        return env
