"""A password never reaches the terminal or a log, however it is spelled (docs/security.md).

Real `scoter` processes against real servers: PostgreSQL (trust auth, so any password is
accepted and the URL must still hide it) and a Redis of this test's own that requires a
password with '/', '?' and '#' in it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import drop_postgres_schema, postgres_schema_url

from scoter import Scoter
from scoter.cli import EXIT_CONFIG

PASSWORD = "sekrit9/hunter2?tok3n#last5"
HASH_ONLY = "sekrit9#hunter2"
"""A password libpq takes as written: urllib reads `#hunter2@host/db` as a fragment."""
REDIS_SERVER = shutil.which("redis-server")


def assert_hidden(text: str, password: str = PASSWORD) -> None:
    """Not the password, nor any piece of it between URL delimiters."""
    for piece in re.split(r"[/?#]", password):
        assert len(piece) < 3 or piece not in text, text


def write_app(directory: Path) -> str:
    """An app module taking its storage from $SCOTER_URL; returns its `module:app` path."""
    name = f"secrets_app_{uuid.uuid4().hex[:8]}"
    source = """\
        from scoter import Scoter

        app = Scoter("secrets")


        @app.task
        def noop():
            return None
        """
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return f"{name}:app"


def scoter(directory: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`scoter ARGS` in a real process, its output 200 columns wide."""
    env = {**os.environ, "SCOTER_URL": url, "PYTHONPATH": str(directory), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "scoter", *args], cwd=directory, env=env, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def worker_start_line(directory: Path, url: str, app: str) -> str:
    """Everything a `scoter worker` logged up to its start line, then SIGTERM."""
    env = {**os.environ, "SCOTER_URL": url, "PYTHONPATH": str(directory)}
    log_path = directory / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoter", "worker", app], cwd=directory, env=env,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while "consumer " not in log_path.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert "consumer " in text, text
    return text


# -- PostgreSQL: libpq connects with a '#' in a password, so this is everyday use ------------


@pytest.fixture
def postgres_base() -> Iterator[tuple[str, str]]:
    """(scheme://user, host:port/db?schema=fresh) of the test server; the server trusts
    local connections, so any password given with the user is accepted."""
    url = postgres_schema_url()
    scheme, _, rest = url.partition("://")
    userinfo, _, where = rest.rpartition("@")
    yield f"{scheme}://{userinfo.partition(':')[0] or 'postgres'}", where
    drop_postgres_schema(url)


@pytest.mark.parametrize("password", [HASH_ONLY, PASSWORD])
def test_a_password_with_a_hash_is_hidden_by_info_repr_and_the_worker(
    tmp_path: Path, postgres_base: tuple[str, str], password: str
) -> None:
    user, where = postgres_base
    url = f"{user}:{password}@{where}"
    app = write_app(tmp_path)
    missing = scoter(tmp_path, url, "info", app)  # a read creates no schema, and says so
    assert missing.returncode == EXIT_CONFIG and "run `scoter migrate" in missing.stderr
    assert_hidden(missing.stdout + missing.stderr, password)
    migrated = scoter(tmp_path, url, "migrate", app)
    assert migrated.returncode == 0, migrated.stderr
    assert_hidden(migrated.stdout + migrated.stderr, password)
    info = scoter(tmp_path, url, "info", app)
    assert info.returncode == 0, info.stderr
    assert f"{user}:***@{where}" in info.stdout
    assert_hidden(info.stdout + info.stderr, password)
    assert_hidden(repr(Scoter("x", url)), password)
    assert_hidden(worker_start_line(tmp_path, url, app), password)


def test_a_query_password_with_a_hash_is_hidden_whole(
    tmp_path: Path, postgres_base: tuple[str, str]
) -> None:
    user, where = postgres_base
    url = f"{user}@{where}&password={PASSWORD}"
    app = write_app(tmp_path)
    assert scoter(tmp_path, url, "migrate", app).returncode == 0
    info = scoter(tmp_path, url, "info", app)
    assert info.returncode == 0, info.stderr
    assert "password=***" in info.stdout
    assert_hidden(info.stdout + info.stderr)


# -- Redis: a server of this test's own that requires PASSWORD --------------------------------


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    if REDIS_SERVER is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("redis-server not installed")
        pytest.skip("redis-server not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    command = [
        REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
        "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=PASSWORD)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
    client.close()
    yield port
    proc.terminate()
    proc.wait(10)


def test_redis_connects_with_the_password_as_written_and_hides_it(
    tmp_path: Path, redis_port: int
) -> None:
    """`redis://:se/cr?et@host` means the password `se/cr?et`, as it does to the user; urllib
    would read a host `:se` and refuse it with an error quoting a piece of the password."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{redis_port}/0"
    app = write_app(tmp_path)
    info = scoter(tmp_path, url, "info", app)
    assert info.returncode == 0, info.stderr
    assert f"redis://:***@127.0.0.1:{redis_port}/0" in info.stdout
    assert_hidden(info.stdout + info.stderr)
    start = worker_start_line(tmp_path, url, app)
    assert f"on redis://:***@127.0.0.1:{redis_port}/0" in start
    assert_hidden(start)


def test_a_bad_redis_url_is_refused_without_the_password(tmp_path: Path) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:notaport/0"
    done = scoter(tmp_path, url, "info", write_app(tmp_path))
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "bad Redis URL 'redis://:***@127.0.0.1:notaport/0'" in done.stderr
    assert_hidden(done.stdout + done.stderr)
