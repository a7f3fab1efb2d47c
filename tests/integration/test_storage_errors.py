"""A storage that is down or misconfigured is said in one line naming the server and the cause.

Real `scoter` processes and producers against real servers: a Redis db number the server does
not have, a Redis user it does not know, a PostgreSQL database and role that do not exist, and
ports where nothing listens. A refused configuration exits 3 (or raises ConfigurationError in
a producer, at once); an outage exits 7 for a read, is waited for by a worker, and bounds a
producer's retries, each time with host:port and the cause.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import POSTGRES_URL, REDIS_URL, postgres_schema_url, redis_prefix_url

from scoter import ConfigurationError, EnqueueError, Scoter
from scoter.cli import EXIT_CONFIG, EXIT_UNAVAILABLE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_netloc(url: str, netloc: str | None = None, path: str | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=netloc or parts.netloc, path=path or parts.path).geturl()


def write_app(directory: Path) -> str:
    """An app on $SCOTER_URL; its `module:app` path."""
    name = f"errors_app_{uuid.uuid4().hex[:8]}"
    source = """\
        from scoter import Scoter

        app = Scoter("errors", enqueue_timeout=1.0)


        @app.task
        def add(a, b):
            return a + b
        """
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return f"{name}:app"


def scoter(
    directory: Path, url: str, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCOTER_URL": url, "PYTHONPATH": str(directory)}
    return subprocess.run(
        [sys.executable, "-m", "scoter", *args], cwd=directory, env=env, capture_output=True,
        text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def assert_one_line(done: subprocess.CompletedProcess[str], code: int, *wanted: str) -> None:
    """Exit `code`, one line on stderr holding each of `wanted`, and no traceback."""
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    for text in wanted:
        assert text in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout


@pytest.fixture
def redis_url() -> str:
    return redis_prefix_url()


@pytest.fixture
def postgres_url() -> str:
    return postgres_schema_url()


# -- a refused configuration: exit 3 -----------------------------------------------------------


@pytest.mark.parametrize("command", [["info"], ["worker"], ["dead", "list"]])
def test_a_redis_db_number_the_server_lacks_exits_3(
    tmp_path: Path, redis_url: str, command: list[str]
) -> None:
    url = with_netloc(redis_url, path="/99")
    done = scoter(tmp_path, url, *command, write_app(tmp_path))
    assert_one_line(done, EXIT_CONFIG, "/99", "DB index is out of range")


def test_a_redis_user_the_server_does_not_know_exits_3_without_the_password(
    tmp_path: Path, redis_url: str
) -> None:
    parts = urllib.parse.urlsplit(redis_url)
    url = with_netloc(redis_url, f"nobody{uuid.uuid4().hex[:6]}:hunter2@{parts.netloc}")
    done = scoter(tmp_path, url, "worker", write_app(tmp_path))
    assert_one_line(done, EXIT_CONFIG, parts.netloc, "AuthenticationError")
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize(
    ("netloc", "refusal"),
    [(None, 'database "nosuch'), ("nobody@{host}", 'role "nobody" does not exist')],
)
@pytest.mark.parametrize("command", ["info", "worker"])
def test_a_postgres_database_or_role_that_does_not_exist_exits_3(
    tmp_path: Path, postgres_url: str, netloc: str | None, refusal: str, command: str
) -> None:
    host = urllib.parse.urlsplit(postgres_url).hostname or ""
    port = urllib.parse.urlsplit(postgres_url).port
    url = with_netloc(
        postgres_url,
        netloc.format(host=f"{host}:{port}") if netloc else None,
        None if netloc else f"/nosuch{uuid.uuid4().hex[:6]}",
    )
    started = time.monotonic()
    done = scoter(tmp_path, url, command, write_app(tmp_path))
    assert_one_line(done, EXIT_CONFIG, f"port {port}", refusal)
    assert "PoolTimeout" not in done.stderr
    assert time.monotonic() - started < 4.5, "no pool timeout waited out"


def test_a_producer_on_a_missing_postgres_database_raises_at_once() -> None:
    url = with_netloc(POSTGRES_URL, path=f"/nosuch{uuid.uuid4().hex[:6]}")
    app = Scoter("errors", url)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=r'database "nosuch\w+" does not exist'):
        add(1, 2)
    assert time.monotonic() - started < 2.0, "not the 5 s of a pool timeout"
    app.storage.close()


# -- a read never creates ----------------------------------------------------------------------


def test_info_on_a_database_without_the_schema_says_migrate_and_creates_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    done = scoter(tmp_path, postgres_url, "info", write_app(tmp_path))
    schema = urllib.parse.parse_qs(urllib.parse.urlsplit(postgres_url).query)["schema"][0]
    assert_one_line(done, EXIT_CONFIG, f"no scoter schema {schema!r}", "scoter migrate")
    with psycopg.connect(POSTGRES_URL) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
    assert found == (0,)


# -- an outage: one line naming where, bounded for a producer, waited for by a worker ---------


@pytest.mark.parametrize("base", [REDIS_URL, POSTGRES_URL])
def test_a_read_of_an_unreachable_server_exits_7_naming_host_and_port(
    tmp_path: Path, base: str
) -> None:
    port = free_port()
    url = with_netloc(base, f"127.0.0.1:{port}")
    done = scoter(tmp_path, url, "info", write_app(tmp_path))
    assert_one_line(done, EXIT_UNAVAILABLE, f"127.0.0.1:{port}", "refused")


@pytest.mark.parametrize("base", [REDIS_URL, POSTGRES_URL])
def test_a_producer_retries_an_unreachable_server_for_enqueue_timeout_then_says_why(
    base: str,
) -> None:
    port = free_port()
    app = Scoter("errors", with_netloc(base, f"127.0.0.1:{port}"), enqueue_timeout=1.0)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    started = time.monotonic()
    with pytest.raises(EnqueueError) as info:
        add(1, 2)
    assert 1.0 <= time.monotonic() - started < 4.0
    assert f"127.0.0.1:{port}" in str(info.value) or f"port {port}" in str(info.value)
    assert "refused" in str(info.value)
    assert "network:" not in str(info.value)
    assert not info.value.stored_unknown, "a connection that never opened sent nothing"
    app.storage.close()


def test_a_worker_on_an_unreachable_redis_says_where_and_waits(tmp_path: Path) -> None:
    port = free_port()
    url = with_netloc(REDIS_URL, f"127.0.0.1:{port}")
    env = {**os.environ, "SCOTER_URL": url, "PYTHONPATH": str(tmp_path)}
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "scoter", "worker", write_app(tmp_path)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while "storage unavailable" not in log_path.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log_path.read_text()
            time.sleep(0.05)
        text = log_path.read_text()
        assert f"cannot reach the storage redis://127.0.0.1:{port}" in text, text
        assert f"connecting to 127.0.0.1:{port}. Connection refused" in text
        assert f"storage unavailable at redis://127.0.0.1:{port}/0, retrying" in text
        assert "network:ConnectionError" not in text and "Traceback" not in text
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
