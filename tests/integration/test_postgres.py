"""What only the PostgreSQL backend does: URLs, schema and migrations, the server's clock,
LISTEN/NOTIFY wake-ups, transactional enqueue, `complete_in`, reconnection. The contract
itself is tested in tests/contract, on every backend.

The server is $SCOTER_TEST_POSTGRES_URL (default: the local one), each test in a fresh schema;
without a server the tests are skipped, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from conftest import drop_postgres_schema, postgres_schema_url

from scoter import SIGNAL_COMPLETE, SIGNAL_LEASE_LOST, LeaseLost, Scoter, State, TaskContext
from scoter.cli import cli
from scoter.config import storage_from_url
from scoter.consumer import attempt
from scoter.consumer.policy import Policy
from scoter.exceptions import ConfigurationError
from scoter.serializers import get_serializer
from scoter.storage import _postgres_schema as pg_schema
from scoter.storage import postgres
from scoter.storage.base import Ack, NewTask
from scoter.storage.postgres import Migration, PostgresStorage, SchemaError

QUEUE = "default"


class Recorder:
    """A signal receiver that keeps the name of every signal sent."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str, task: Any, *extra: Any) -> None:
        self.names.append(name)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def url() -> Iterator[str]:
    location = postgres_schema_url()
    yield location
    drop_postgres_schema(location)


@pytest.fixture
def pg(url: str) -> Iterator[PostgresStorage]:
    storage = PostgresStorage.from_url(url)
    yield storage
    storage.close()


@pytest.fixture
def db(url: str) -> Iterator[psycopg.Connection[Any]]:
    """The application's own connection (not scoter's), outside any transaction."""
    with psycopg.connect(_server(url), autocommit=True) as conn:
        yield conn


def _server(url: str) -> str:
    return url.partition("?schema=")[0]


def _schema(url: str) -> str:
    return url.partition("?schema=")[2]


def task(task_id: str, **fields: Any) -> NewTask:
    return NewTask(task_id, "app.work", fields.pop("queue", QUEUE), b"{}", **fields)


def effects(db: psycopg.Connection[Any], url: str) -> list[tuple[Any, ...]]:
    return db.execute(f"SELECT task FROM {_schema(url)}.effects ORDER BY task").fetchall()


# -- URLs ------------------------------------------------------------------------------------


def test_from_url_takes_scoter_options_and_hides_the_password() -> None:
    storage = PostgresStorage.from_url(
        "postgresql://me:s3cret@db.example:5433/jobs?schema=work&max_connections=3&sslmode=require"
    )
    assert storage.schema == "work"
    assert "s3cret" not in storage.url and "***" in storage.url
    assert storage.url.startswith("postgresql://me:***@db.example:5433/jobs?")
    storage.close()  # never connected: opening connects to nothing


def test_both_schemes_open_postgres_storage() -> None:
    for scheme in ("postgres", "postgresql"):
        storage = storage_from_url(f"{scheme}://u@localhost/db")
        assert isinstance(storage, PostgresStorage)
        storage.close()


@pytest.mark.parametrize("schema", ["Upper", "has-dash", "1st", "x" * 51, ""])
def test_bad_schema_names_are_refused(schema: str) -> None:
    with pytest.raises(ConfigurationError, match="schema"):
        PostgresStorage("postgresql://u@localhost/db", schema=schema)


def test_bad_max_connections_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_connections"):
        PostgresStorage.from_url("postgresql://u@localhost/db?max_connections=many")


# -- schema and migrations -------------------------------------------------------------------


def _versions(db: psycopg.Connection[Any], url: str) -> list[int]:
    rows = db.execute(f"SELECT version FROM {_schema(url)}.migrations ORDER BY version")
    return [r[0] for r in rows]


def test_first_use_creates_the_schema(pg: PostgresStorage, db: Any, url: str) -> None:
    assert pg.counts() == {}
    assert _versions(db, url) == [m.version for m in pg_schema.MIGRATIONS]


def test_processes_starting_together_create_the_schema_once(url: str, db: Any) -> None:
    storages = [PostgresStorage.from_url(url) for _ in range(6)]
    start = threading.Barrier(len(storages))
    errors: list[BaseException] = []

    def first_use(storage: PostgresStorage) -> None:
        start.wait(10)
        try:
            storage.enqueue([task(uuid.uuid4().hex)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for storage in storages:
        storage.close()
    assert errors == []
    assert _versions(db, url) == [m.version for m in pg_schema.MIGRATIONS]


def _newer_scoter(monkeypatch: pytest.MonkeyPatch) -> str:
    """This scoter with one migration more than the database has: the name of that one."""
    extra = Migration(
        pg_schema.LATEST + 1, "9999_extra.sql", "CREATE TABLE {schema}.extra (x int);"
    )
    monkeypatch.setattr(pg_schema, "MIGRATIONS", [*pg_schema.MIGRATIONS, extra])
    monkeypatch.setattr(pg_schema, "LATEST", extra.version)
    return extra.name


@pytest.fixture
def newer_scoter(monkeypatch: pytest.MonkeyPatch) -> str:
    return _newer_scoter(monkeypatch)


def test_an_older_schema_is_refused_until_migrated(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = PostgresStorage.from_url(url)
    old.enqueue([task("a")])
    old.close()
    name = _newer_scoter(monkeypatch)
    new = PostgresStorage.from_url(url)
    with pytest.raises(SchemaError, match="scoter migrate"):
        new.counts()
    with pytest.raises(SchemaError):  # still refused: nothing changed in between
        new.claim([QUEUE], 1, 30, "c1")

    assert new.migrate() == [name]
    assert new.counts() == {(QUEUE, State.QUEUED): 1}
    assert new.migrate() == []
    new.close()


def test_migrate_true_upgrades_on_first_use(url: str, newer_scoter: str, db: Any) -> None:
    storage = PostgresStorage.from_url(url)
    storage.migrate()  # the schema at the newest version: nothing to refuse
    storage.close()
    db.execute(f"DELETE FROM {_schema(url)}.migrations WHERE version = %s", (pg_schema.LATEST,))
    db.execute(f"DROP TABLE {_schema(url)}.extra")
    refusing = PostgresStorage.from_url(url)
    with pytest.raises(SchemaError):
        refusing.counts()
    refusing.close()
    upgrading = PostgresStorage(_server(url), schema=_schema(url), migrate=True)
    assert upgrading.counts() == {}
    assert _versions(db, url)[-1] == pg_schema.LATEST
    upgrading.close()


def test_a_newer_schema_is_refused(pg: PostgresStorage, db: Any, url: str) -> None:
    pg.counts()
    db.execute(f"INSERT INTO {_schema(url)}.migrations (version, name) VALUES (9999, 'future')")
    later = PostgresStorage.from_url(url)
    with pytest.raises(SchemaError, match="upgrade scoter"):
        later.counts()
    with pytest.raises(SchemaError, match="upgrade scoter"):
        later.migrate()
    later.close()


APP_SOURCE = """\
from scoter import Scoter

app = Scoter("pgapp", {url!r})


@app.task
def add(a, b):
    return a + b
"""


def _app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    name = f"pgapp_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(APP_SOURCE.format(url=url))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return f"{name}:app"


def test_scoter_migrate_upgrades_the_schema(
    url: str, newer_scoter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: Any
) -> None:
    app = _app_module(tmp_path, monkeypatch, url)
    result = CliRunner().invoke(cli, ["migrate", app])
    assert result.exit_code == 0, result.output
    assert newer_scoter in result.output
    again = CliRunner().invoke(cli, ["migrate", app])
    assert "up to date" in again.output
    assert _versions(db, url)[-1] == pg_schema.LATEST


def test_scoter_migrate_on_sqlite_has_nothing_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app_module(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'x.db'}")
    result = CliRunner().invoke(cli, ["migrate", app])
    assert result.exit_code == 0 and "needs no migrations" in result.output


def test_scoter_info_and_dead_commands_work_on_postgres(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app_module(tmp_path, monkeypatch, url)
    storage = PostgresStorage.from_url(url)
    storage.enqueue([task("a"), task("b")])
    [lease] = storage.claim([QUEUE], 1, 30, "c1")
    assert storage.dead(lease.token, "error", "ValueError: boom")
    storage.close()

    info = CliRunner().invoke(cli, ["info", app])
    assert info.exit_code == 0, info.output
    assert "default" in info.output and _schema(url) in info.output
    listed = CliRunner().invoke(cli, ["dead", "list", app])
    assert lease.id in listed.output and "ValueError: boom" in listed.output
    retried = CliRunner().invoke(cli, ["dead", "retry", app, "--all"])
    assert "queued 1" in retried.output


# -- the server's clock ----------------------------------------------------------------------


@pytest.fixture
def fast_host_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[], float]:
    """This host's clock one hour ahead of the server's, as scoter's PostgreSQL module sees it."""
    real = time.time
    skewed = types.SimpleNamespace(
        time=lambda: real() + 3600, monotonic=time.monotonic, sleep=time.sleep
    )
    monkeypatch.setattr(postgres, "time", skewed)
    return skewed.time  # type: ignore[no-any-return]


def test_leases_and_etas_follow_the_server_clock(
    pg: PostgresStorage, fast_host_clock: Callable[[], float]
) -> None:
    pg.enqueue([task("now"), task("later", eta=fast_host_clock() + 60)])
    [lease] = pg.claim([QUEUE], 5, 30, "c1")
    assert lease.id == "now"
    assert lease.expires == pytest.approx(time.time() + 30, abs=5)  # the server's time

    assert pg.rescue(fast_host_clock()) == []  # on the host's clock it expired long ago
    assert pg.promote(fast_host_clock()) == 0
    assert pg.promote(fast_host_clock() + 61) == 1
    assert pg.retry(lease.token, fast_host_clock() + 60, "E: e")
    info = pg.get("now")
    assert info is not None and info.state is State.SCHEDULED
    assert info.eta == pytest.approx(time.time() + 60, abs=5)
    assert [r.id for r in pg.rescue(fast_host_clock() + 3600)] == []
    assert pg.expire_results(fast_host_clock()) == 0


# -- wake-ups --------------------------------------------------------------------------------


def _waited(storage: PostgresStorage, queues: list[str], timeout: float) -> float:
    start = time.monotonic()
    storage.wait(queues, timeout)
    return time.monotonic() - start


def _drain(waiter: PostgresStorage) -> None:
    """Take the notifications that already arrived, until a wait lasts its whole timeout."""
    for _ in range(10):
        if _waited(waiter, [QUEUE], 0.2) >= 0.15:
            return
    raise AssertionError("wait() keeps returning early")


def _listening(url: str) -> Iterator[PostgresStorage]:
    waiter = PostgresStorage.from_url(url)
    waiter.wait([QUEUE], 0.01)  # a new listener returns at once: connected now
    yield waiter
    waiter.close()


@pytest.fixture
def waiter(url: str, pg: PostgresStorage) -> Iterator[PostgresStorage]:
    pg.counts()  # the schema exists before anyone listens
    yield from _listening(url)


def _claimed(pg: PostgresStorage, **fields: Any) -> str:
    pg.enqueue([task("a", **fields)])
    return pg.claim([QUEUE], 1, fields.pop("lease", 30), "c1")[0].token


def _expired(pg: PostgresStorage) -> None:
    pg.enqueue([task("a")])
    pg.claim([QUEUE], 1, 0.05, "c1")
    time.sleep(0.1)


STEPS: dict[str, tuple[Callable[[PostgresStorage], Any], Callable[[PostgresStorage, Any], Any]]] = {
    "enqueue": (lambda pg: None, lambda pg, _: pg.enqueue([task("a")])),
    "release": (_claimed, lambda pg, token: pg.release(token, "shutdown")),
    "retry": (_claimed, lambda pg, token: pg.retry(token, time.time() - 1, "E: e")),
    "crash": (_claimed, lambda pg, token: pg.crash(token, "killed")),
    "promote": (
        lambda pg: pg.enqueue([task("a", eta=time.time() + 100)]),
        lambda pg, _: pg.promote(time.time() + 200),
    ),
    "rescue": (_expired, lambda pg, _: pg.rescue(time.time())),
    "requeue_dead": (
        lambda pg: pg.dead(_claimed(pg), "error", None),
        lambda pg, _: pg.requeue_dead(),
    ),
}


@pytest.mark.parametrize("step", STEPS.values(), ids=STEPS.keys())
def test_each_step_that_makes_a_task_claimable_wakes_a_waiter(
    pg: PostgresStorage, waiter: PostgresStorage, step: tuple[Any, Any]
) -> None:
    setup, wake = step
    state = setup(pg)
    _drain(waiter)
    threading.Timer(0.2, wake, (pg, state)).start()

    assert 0.15 < _waited(waiter, [QUEUE], 10) < 2
    assert pg.claim([QUEUE], 1, 30, "c2") != []


def test_a_waiter_sleeps_through_other_queues(pg: PostgresStorage, waiter: PostgresStorage) -> None:
    threading.Timer(0.1, pg.enqueue, ([task("x", queue="other")],)).start()
    assert _waited(waiter, [QUEUE], 0.5) >= 0.45
    threading.Timer(0.1, pg.enqueue, ([task("y", queue="other")],)).start()
    assert _waited(waiter, [QUEUE, "other"], 5) < 2


def test_an_enqueue_in_a_transaction_wakes_only_at_commit(
    pg: PostgresStorage, waiter: PostgresStorage, db: psycopg.Connection[Any]
) -> None:
    with db.transaction():
        pg.enqueue_in(db, [task("a")])
        assert _waited(waiter, [QUEUE], 0.3) >= 0.25
    assert _waited(waiter, [QUEUE], 5) < 1  # the notification arrived with the commit


def test_wait_survives_a_dropped_listening_connection(
    pg: PostgresStorage, waiter: PostgresStorage, db: psycopg.Connection[Any], url: str
) -> None:
    killed = db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%'"
        " AND query LIKE %s",
        (f"%{_schema(url)}%",),
    ).fetchall()
    assert killed == [(True,)]
    time.sleep(0.1)
    waiter.wait([QUEUE], 0.2)  # notices the loss and returns: never raises
    waiter.wait([QUEUE], 0.2)  # listens again
    threading.Timer(0.2, pg.enqueue, ([task("a")],)).start()
    assert _waited(waiter, [QUEUE], 10) < 2


# -- transactional enqueue -------------------------------------------------------------------


def test_a_rolled_back_enqueue_leaves_no_task(pg: PostgresStorage, db: Any) -> None:
    with pytest.raises(RuntimeError), db.transaction():
        assert pg.enqueue_in(db, [task("a"), task("b")]) == 2
        raise RuntimeError("the application's transaction fails")
    assert pg.get("a") is None and pg.counts() == {}


def test_a_committed_enqueue_is_claimable(pg: PostgresStorage, db: Any) -> None:
    with db.transaction():
        assert pg.enqueue_in(db, [task("a")]) == 1
        assert pg.claim([QUEUE], 1, 30, "c1") == []  # not yet committed: invisible
    assert [lease.id for lease in pg.claim([QUEUE], 1, 30, "c1")] == ["a"]


def test_app_and_task_enqueue_in(url: str, db: Any) -> None:
    app = Scoter("t", url)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    with db.transaction():
        one = add.enqueue_in(db, 1, 2)
        two, three = app.enqueue_in(db, [add.s(3, 4), add.s(5, 6)])
    assert [r.state for r in (one, two, three)] == [State.QUEUED] * 3
    assert app.run_pending() == 3
    assert [r.get() for r in (one, two, three)] == [3, 7, 11]
    app.storage.close()


def test_enqueue_in_needs_postgres_and_a_psycopg_connection(pg: PostgresStorage) -> None:
    app = Scoter("t", "memory://")
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        app.enqueue_in(None, [])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="psycopg"):
        pg.enqueue_in(object(), [task("a")])  # type: ignore[arg-type]


# -- complete_in: an effect exactly once -----------------------------------------------------


@pytest.fixture
def effects_app(url: str, db: psycopg.Connection[Any]) -> Iterator[Scoter]:
    """An app whose task `pay` writes an effect and completes in the same transaction."""
    app = Scoter("t", url)
    app.storage.counts()
    db.execute(f"CREATE TABLE {_schema(url)}.effects (task text PRIMARY KEY)")

    @app.task(context=True)
    def pay(fail_after: bool, ctx: TaskContext) -> None:
        with psycopg.connect(_server(url), autocommit=True) as conn, conn.transaction():
            conn.execute(f"INSERT INTO {_schema(url)}.effects VALUES (%s)", (ctx.task_id,))
            ctx.complete_in(conn, result="paid")
            if fail_after:
                raise RuntimeError("after complete_in, before the commit")

    yield app
    app.storage.close()


def _run_one(app: Scoter, recorder: Any) -> Policy:
    """Claim, run and settle one task in this thread; the policy that settled it."""
    app.signal()(recorder)
    policy = Policy(app, "c1")
    [lease] = app.storage.claim([QUEUE], 1, 30, "c1")
    ctx = attempt.new_context(app, lease, 30)
    policy.apply(ctx, attempt.execute(app, ctx))
    return policy


def test_complete_in_commits_the_effect_and_the_completion_together(
    effects_app: Scoter, db: Any, url: str, recorder: Any
) -> None:
    message = effects_app.tasks["pay"].s(False)
    effects_app.enqueue(message)

    policy = _run_one(effects_app, recorder)

    assert effects(db, url) == [(message.id,)]
    assert effects_app.result(message.id).get() == "paid"
    info = effects_app.storage.get(message.id)
    assert info is not None and [h["outcome"] for h in info.history] == ["succeeded"]
    assert SIGNAL_COMPLETE in recorder.names and SIGNAL_LEASE_LOST not in recorder.names
    assert policy.stale_writes == 0


def test_a_rolled_back_complete_in_leaves_the_task_to_retry(
    effects_app: Scoter, db: Any, url: str, recorder: Any
) -> None:
    message = effects_app.tasks["pay"].s(True)
    effects_app.enqueue(message)

    _run_one(effects_app, recorder)

    assert effects(db, url) == []
    info = effects_app.storage.get(message.id)
    assert info is not None and info.state is State.DEAD  # no retries: the error is final
    assert "before the commit" in (info.error or "")


def test_a_stale_attempts_complete_in_is_refused_and_rolled_back(
    pg: PostgresStorage, db: Any, url: str
) -> None:
    pg.enqueue([task("a")])
    db.execute(f"CREATE TABLE {_schema(url)}.effects (task text)")
    [old] = pg.claim([QUEUE], 1, 0.05, "old")
    time.sleep(0.1)
    assert [r.id for r in pg.rescue(time.time())] == ["a"]
    [new] = pg.claim([QUEUE], 1, 30, "new")
    stale = TaskContext(old, pg, get_serializer("json"))

    with pytest.raises(LeaseLost), db.transaction():
        db.execute(f"INSERT INTO {_schema(url)}.effects VALUES ('a')")
        stale.complete_in(db)

    assert effects(db, url) == []
    assert stale.lease_lost and stale.stop_requested
    info = pg.get("a")
    assert info is not None and (info.state, info.consumer) == (State.RUNNING, "new")
    assert pg.ack(new.token, None, None)


def test_complete_in_outside_a_transaction_is_refused(pg: PostgresStorage, db: Any) -> None:
    pg.enqueue([task("a")])
    [lease] = pg.claim([QUEUE], 1, 30, "c1")
    ctx = TaskContext(lease, pg, get_serializer("json"))
    with pytest.raises(ValueError, match="transaction"):
        ctx.complete_in(db)  # autocommit, no transaction open: it would commit on its own
    assert pg.ack(lease.token, None, None)


def test_complete_in_needs_postgres() -> None:
    app = Scoter("t", "memory://")
    app.storage.enqueue([task("a")])
    [lease] = app.storage.claim([QUEUE], 1, 30, "c1")
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        TaskContext(lease, app.storage, app.serializer).complete_in(None)  # type: ignore[arg-type]


# -- lock order ------------------------------------------------------------------------------


def _running_in_reverse_id_order(pg: PostgresStorage, count: int) -> list[str]:
    """Tasks t0..t{count-1}, stored (so scanned) in reverse id order and all claimed: their
    tokens, in reverse id order too."""
    for i in reversed(range(count)):
        pg.enqueue([task(f"t{i}")])
    tokens = {lease.id: lease.token for lease in pg.claim([QUEUE], count, 30, "c1")}
    return [tokens[f"t{i}"] for i in reversed(range(count))]


def _holds_only_the_first_row(write: Callable[[], object], url: str, db: Any) -> object:
    """Run `write` while another transaction holds the lowest-id row `t0`: it must wait for
    that row holding no other (locking in id order), then finish once `t0` is let go."""
    tasks = f"{_schema(url)}.tasks"
    outcome: list[object] = []
    with db.transaction():
        db.execute(f"SELECT 1 FROM {tasks} WHERE id = 't0' FOR UPDATE")
        thread = threading.Thread(target=lambda: outcome.append(write()))
        thread.start()
        _until_a_statement_waits_for_a_lock(db, url)
        with psycopg.connect(_server(url)) as probe:  # a transaction of its own
            try:
                probe.execute(f"SELECT id FROM {tasks} WHERE id <> 't0' FOR UPDATE NOWAIT")
            except psycopg.errors.LockNotAvailable:
                pytest.fail("waiting for t0, the write held other rows: not in id order")
            probe.rollback()
    thread.join(timeout=10)
    assert outcome, "the write did not finish once the row was let go"
    return outcome[0]


def _until_a_statement_waits_for_a_lock(db: Any, url: str) -> None:
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND position(%s in query) > 0"
    )
    deadline = time.monotonic() + 10
    while db.execute(waiting, [_schema(url)]).fetchone() == (0,):
        assert time.monotonic() < deadline, "the write never waited for the held row"
        time.sleep(0.01)


# A consumer's heartbeat and its acks write the same rows at once. Locking them in different
# orders, each could hold a row the other waits for: PostgreSQL breaks such a deadlock only
# after deadlock_timeout (1 s), failing one of them, and leases expire meanwhile.


def test_heartbeat_locks_its_rows_in_id_order(pg: PostgresStorage, url: str, db: Any) -> None:
    tokens = _running_in_reverse_id_order(pg, 6)
    lost = _holds_only_the_first_row(lambda: pg.heartbeat(tokens, 30), url, db)
    assert lost == set()


def test_acks_lock_their_rows_in_id_order(pg: PostgresStorage, url: str, db: Any) -> None:
    tokens = _running_in_reverse_id_order(pg, 6)
    acks = [Ack(token, None, None) for token in tokens]
    settled = _holds_only_the_first_row(
        lambda: pg.ack_many_and_claim(acks, [QUEUE], 0, 30, "c1"), url, db
    )
    assert settled == ([True] * 6, [])


def test_result_expiry_skips_a_row_another_statement_holds(
    pg: PostgresStorage, url: str, db: Any
) -> None:
    pg.enqueue([task("a")])
    [lease] = pg.claim([QUEUE], 1, 30, "c1")
    assert pg.ack(lease.token, None, 0.0)
    expired: list[int] = []
    with db.transaction():  # as an enqueue starting "a" over would hold it
        db.execute(f"SELECT 1 FROM {_schema(url)}.tasks WHERE id = 'a' FOR UPDATE")
        expiry = threading.Thread(target=lambda: expired.append(pg.expire_results(time.time())))
        expiry.start()
        expiry.join(timeout=5)
        assert expired == [0], "the expiry waited for the held row"
    assert pg.expire_results(time.time() + 1) == 1


# -- connections -----------------------------------------------------------------------------


def test_a_dropped_connection_is_transient_and_the_next_call_reconnects(url: str, db: Any) -> None:
    name = f"victim-{uuid.uuid4().hex[:8]}"
    storage = PostgresStorage.from_url(f"{url}&application_name={name}")
    storage.enqueue([task("a")])
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
               (name,))  # fmt: skip

    with pytest.raises(storage.transient_errors):
        storage.counts()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert storage.counts() == {(QUEUE, State.QUEUED): 1}
            break
        except storage.transient_errors:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    storage.close()


def test_a_given_pool_is_used_and_left_open(url: str) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(_server(url), min_size=1, max_size=2, open=True) as pool:
        storage = PostgresStorage(pool=pool, schema=_schema(url))
        assert "://" in storage.url
        storage.enqueue([task("a")])
        storage.wait([QUEUE], 0.01)
        [lease] = storage.claim([QUEUE], 1, 30, "c1")
        assert storage.ack(lease.token, None, None)
        storage.close()
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_progress_is_fenced_and_shown_while_running(pg: PostgresStorage) -> None:
    pg.enqueue([task("a")])
    [lease] = pg.claim([QUEUE], 1, 30, "c1")
    assert pg.progress(lease.token, 3, 10)
    info = pg.get("a")
    assert info is not None and info.progress == (3, 10)
    assert pg.ack(lease.token, None, None)
    assert not pg.progress(lease.token, 4, 10)
    info = pg.get("a")
    assert info is not None and info.progress is None
