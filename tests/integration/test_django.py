"""A Django project (tests/integration/django_project) with real processes: its views enqueue
inside transactions — the native task with `enqueue_in` on Django's own PostgreSQL connection
(on commit with SQLite), the djhuey task with `on_commit_task` — `manage.py run_huey` and
`manage.py scoter_worker` run the tasks, both are SIGTERMed mid-task and replaced, and every
task finishes; a rolled-back transaction enqueues nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import drop_postgres_schema, postgres_schema_url

PROJECT = Path(__file__).parent / "django_project"
ORDERS = range(8)
ROLLED_BACK = range(100, 104)
PRODUCE = (
    "from django.test import Client; c = Client(); "
    f"[c.get(f'/order/{{i}}/') for i in {list(ORDERS)}]; "
    f"[c.get(f'/order/{{i}}/rollback/') for i in {list(ROLLED_BACK)}]"
)


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "DJANGO_SETTINGS_MODULE": "djproject.settings",
           "DJANGO_TEST_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    if request.param == "sqlite":
        env["SCOTER_URL"] = f"sqlite:///{tmp_path / 'queue.db'}"
        yield env
        return
    import psycopg

    url = postgres_schema_url()
    parts = urllib.parse.urlsplit(url)
    schema = f"dj{uuid.uuid4().hex[:16]}"
    libpq = parts._replace(query="").geturl()
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    env.update(SCOTER_URL=url, DJANGO_PG_SCHEMA=schema, DJANGO_PG_NAME=parts.path.lstrip("/"),
               DJANGO_PG_USER=parts.username or "postgres", DJANGO_PG_HOST=parts.hostname or "",
               DJANGO_PG_PORT=str(parts.port or 5432))  # fmt: skip
    try:
        yield env
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        drop_postgres_schema(url)


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def start(env: dict[str, str], tmp: Path, *args: str) -> subprocess.Popen[bytes]:
    log = open(tmp / f"{args[0]}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - the child's
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=PROJECT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def done(tmp: Path) -> dict[str, list[int]]:
    runs = tmp / "runs.db"
    if not runs.exists():
        return {}
    with sqlite3.connect(runs, timeout=30) as db:
        try:
            rows = db.execute("SELECT kind, n FROM done ORDER BY n").fetchall()
        except sqlite3.OperationalError:
            return {}
    found: dict[str, list[int]] = {}
    for kind, n in rows:
        found.setdefault(kind, []).append(n)
    return found


def wait_for(condition: object, timeout: float, tmp: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.read_text()}" for p in tmp.glob("*.log"))
            raise AssertionError(f"timed out; done: {done(tmp)}\n{logs}")
        time.sleep(0.05)


def test_views_enqueue_and_workers_finish_through_sigterm(project: dict[str, str]) -> None:
    tmp = Path(project["DJANGO_TEST_DIR"])
    manage(project, "migrate", "--run-syncdb", "-v", "0")
    manage(project, "shell", "-c", PRODUCE)
    workers = [start(project, tmp, "run_huey", "-w", "2", "-t", "5"),
               start(project, tmp, "scoter_worker", "-w", "2")]  # fmt: skip
    try:
        wait_for(lambda: len(done(tmp).get("huey", [])) + len(done(tmp).get("scoter", [])) >= 2,
                 60, tmp)  # fmt: skip
        for proc in workers:  # mid-task: each runs 2 tasks of 0.4 s at a time
            proc.send_signal(signal.SIGTERM)
        assert [proc.wait(30) for proc in workers] == [0, 0]
        workers += [start(project, tmp, "run_huey", "-w", "2", "-q"),
                    start(project, tmp, "scoter_worker", "-w", "2", "-q")]  # fmt: skip
        wanted = sorted(ORDERS)
        wait_for(lambda: sorted(set(done(tmp).get("huey", []))) == wanted
                 and sorted(set(done(tmp).get("scoter", []))) == wanted, 60, tmp)  # fmt: skip
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert not set(ROLLED_BACK) & {n for ns in done(tmp).values() for n in ns}
