"""Signing on a real SQLite file, tampered with through sqlite3 as anyone who can write the
file could: what the producer decided, results and checkpoints are verified before use."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pickle
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from scoter import Interrupt, Message, Scoter, State, TaskContext
from scoter.config import ENV_SECRET_KEYS, secret_keys_from_env
from scoter.exceptions import ConfigurationError, DecodeError
from scoter.serializers import CHECKPOINT, MIN_KEY_BYTES, Signer
from scoter.storage.base import NewTask, TaskInfo

from .attempts import LEASE_S, InlineConsumer

KEY = "the signing key: 32 bytes long.."
OLD = "the retired key: verifying only"


class Planted:
    """A pickle that creates a directory when it is loaded: proof that it was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return os.mkdir, (str(self.path),)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


def signed_app(db: Path, keys: list[str] | None = None, **options: Any) -> Scoter:
    return Scoter("signing", f"sqlite:///{db}", secret_keys=keys or [KEY], **options)


def tamper(db: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute(sql, params).rowcount == 1, sql


def info(app: Scoter, task_id: str) -> TaskInfo:
    found = app.storage.get(task_id)
    assert found is not None
    return found


def greet_and_purge(app: Scoter) -> list[tuple[str, str]]:
    """Register the harmless `greet` and the harmful `purge_user`; returns the calls made."""
    calls: list[tuple[str, str]] = []

    @app.task
    def greet(user: str) -> str:
        calls.append(("greet", user))
        return f"hello {user}"

    @app.task
    def purge_user(user: str) -> None:
        calls.append(("purge_user", user))

    @app.task(queue="other")
    def elsewhere() -> None: ...

    return calls


def assert_dead_undecodable(app: Scoter, task_id: str, *fragments: str) -> None:
    dead = info(app, task_id)
    assert (dead.state, dead.reason) == (State.DEAD, "undecodable"), dead
    for fragment in fragments:
        assert fragment in (dead.error or ""), dead.error


def assert_consumer_goes_on(app: Scoter, calls: list[tuple[str, str]]) -> None:
    before = len(calls)
    result = app.enqueue(Message("greet", ("bob",)))
    app.run_pending()
    assert calls[before:] == [("greet", "bob")]
    assert result.get() == "hello bob"


# -- what the producer decided ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("name", "purge_user", "name 'purge_user' (signed: 'greet')"),
        ("queue", "other", "queue 'other' (signed: 'default')"),
        ("priority", 9, "priority 9 (signed: 0)"),
        ("max_crashes", 1000, "max_crashes 1000 (signed: 3)"),
    ],
)
def test_a_changed_record_goes_dead_and_never_runs(
    db: Path, column: str, value: object, fragment: str
) -> None:
    app = signed_app(db)
    calls = greet_and_purge(app)
    result = app.enqueue(Message("greet", ("alice",)))
    tamper(db, f"UPDATE scoter_tasks SET {column} = ? WHERE id = ?", value, result.id)

    assert app.run_pending(["default", "other"]) == 1
    assert calls == []
    assert_dead_undecodable(app, result.id, fragment, "does not run")
    assert_consumer_goes_on(app, calls)


def test_a_changed_id_goes_dead(db: Path) -> None:
    app = signed_app(db)
    calls = greet_and_purge(app)
    result = app.enqueue(Message("greet", ("alice",)))
    tamper(db, "UPDATE scoter_tasks SET id = 'forged' WHERE id = ?", result.id)

    app.run_pending()
    assert calls == []
    assert_dead_undecodable(app, "forged", f"id 'forged' (signed: '{result.id}')")


def test_signed_bytes_replayed_under_a_new_id_do_not_run_again(db: Path) -> None:
    app = signed_app(db)
    calls = greet_and_purge(app)
    result = app.enqueue(Message("greet", ("alice",)))
    app.run_pending()
    assert calls == [("greet", "alice")]

    payload = info(app, result.id).payload
    assert app.storage.enqueue([NewTask("replayed", "greet", "default", payload)]) == 1
    app.run_pending()
    assert calls == [("greet", "alice")]
    assert_dead_undecodable(app, "replayed", f"id 'replayed' (signed: '{result.id}')")


def test_a_task_moved_before_its_signed_eta_is_handed_back_until_then(db: Path) -> None:
    app = signed_app(db)
    calls = greet_and_purge(app)
    result = app.tasks["greet"].schedule(("alice",), delay=3600)
    signed_eta = info(app, result.id).eta
    assert signed_eta is not None
    tamper(db, "UPDATE scoter_tasks SET state = 'queued', eta = 0 WHERE id = ?", result.id)

    assert app.run_pending() == 1
    assert calls == []
    held = info(app, result.id)
    assert held.state is State.SCHEDULED
    assert held.eta is not None and held.eta >= signed_eta - 1.0
    assert "before its signed eta" in str(held.history[-1]["detail"])


def test_a_retry_moves_the_stored_eta_and_the_task_still_runs(db: Path) -> None:
    app = signed_app(db)
    attempts: list[int] = []

    @app.task(retries=1, context=True)
    def flaky(ctx: TaskContext) -> str:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ValueError("first attempt fails")
        return "ok"

    result = flaky.schedule(eta=time.time() - 5)
    app.run_pending()
    assert attempts == [1, 2]
    assert result.get() == "ok"


def test_an_unsigned_message_goes_dead_when_signing_is_on(db: Path) -> None:
    app = signed_app(db)
    calls = greet_and_purge(app)
    data = b'{"args":["alice"],"kwargs":{}}'
    app.storage.enqueue([NewTask("plain", "greet", "default", data)])

    app.run_pending()
    assert calls == []
    assert_dead_undecodable(app, "plain", "not signed")


def test_a_message_signed_in_the_old_format_goes_dead_with_its_reason(db: Path) -> None:
    """The old signature covered the arguments only: accepting it would accept a swapped name."""
    app = signed_app(db)
    calls = greet_and_purge(app)
    data = b'{"args":["alice"],"kwargs":{}}'
    old_format = hmac.new(KEY.encode(), data, hashlib.sha256).hexdigest().encode() + b"." + data
    app.storage.enqueue([NewTask("old", "purge_user", "default", old_format)])

    app.run_pending()
    assert calls == []
    assert_dead_undecodable(app, "old", "older scoter", "enqueue it again")


# -- results ----------------------------------------------------------------------------------


def test_a_forged_json_result_raises_from_get(db: Path) -> None:
    app = signed_app(db)
    greet_and_purge(app)
    result = app.enqueue(Message("greet", ("alice",)))
    app.run_pending()
    assert result.get() == "hello alice"

    tamper(db, "UPDATE scoter_tasks SET result = ? WHERE id = ?", b'"hello mallory"', result.id)
    with pytest.raises(DecodeError, match=f"result of task {result.id} is not trusted"):
        result.get()


def test_a_result_copied_from_another_task_raises_from_get(db: Path) -> None:
    app = signed_app(db)
    greet_and_purge(app)
    alice = app.enqueue(Message("greet", ("alice",)))
    bob = app.enqueue(Message("greet", ("bob",)))
    app.run_pending()

    copied = info(app, alice.id).result
    tamper(db, "UPDATE scoter_tasks SET result = ? WHERE id = ?", copied, bob.id)
    assert alice.get() == "hello alice"
    with pytest.raises(DecodeError, match="not trusted"):
        bob.get()


def test_a_checkpoint_signed_for_the_task_does_not_pass_as_its_result(db: Path) -> None:
    app = signed_app(db)
    greet_and_purge(app)
    result = app.enqueue(Message("greet", ("alice",)))
    app.run_pending()

    checkpoint = app.encode_value("hello mallory", CHECKPOINT, result.id)
    tamper(db, "UPDATE scoter_tasks SET result = ? WHERE id = ?", checkpoint, result.id)
    with pytest.raises(DecodeError, match="not trusted"):
        result.get()


def test_a_planted_pickle_result_is_never_loaded(db: Path, tmp_path: Path) -> None:
    app = signed_app(db, serializer="pickle")
    greet_and_purge(app)
    result = app.enqueue(Message("greet", ("alice",)))
    app.run_pending()

    proof = tmp_path / "result-was-unpickled"
    planted = pickle.dumps(Planted(proof))
    tamper(db, "UPDATE scoter_tasks SET result = ? WHERE id = ?", planted, result.id)
    with pytest.raises(DecodeError, match="not signed"):
        result.get()
    assert not proof.exists()


# -- checkpoints ------------------------------------------------------------------------------


def resumable(app: Scoter) -> list[Any]:
    """Register `resumable`: checkpoints 3 then hands itself back, then returns what it read."""
    seen: list[Any] = []

    @app.task(context=True)
    def resumable(ctx: TaskContext) -> Any:
        state = ctx.checkpoint_state
        seen.append(state)
        if state is None:
            ctx.checkpoint(3)
            raise Interrupt()
        return state

    return seen


def test_a_signed_checkpoint_is_read_back_by_the_next_attempt(db: Path) -> None:
    app = signed_app(db)
    seen = resumable(app)
    result = app.enqueue(Message("resumable"))
    app.run_pending()
    assert seen == [None, 3]
    assert result.get() == 3


@pytest.mark.parametrize("serializer", ["json", "pickle"])
def test_a_planted_checkpoint_fails_the_attempt_and_is_never_loaded(
    db: Path, tmp_path: Path, serializer: str
) -> None:
    app = signed_app(db, serializer=serializer)
    seen = resumable(app)
    result = app.enqueue(Message("resumable"))
    proof = tmp_path / "checkpoint-was-unpickled"
    planted = pickle.dumps(Planted(proof)) if serializer == "pickle" else b"99"
    tamper(db, "UPDATE scoter_tasks SET checkpoint = ? WHERE id = ?", planted, result.id)

    app.run_pending()
    assert seen == []
    assert not proof.exists()
    dead = info(app, result.id)
    assert (dead.state, dead.reason) == (State.DEAD, "error")
    assert f"DecodeError: the checkpoint of task {result.id} is not trusted" in (dead.error or "")


def test_a_checkpoint_copied_from_another_task_fails_the_attempt(db: Path) -> None:
    app = signed_app(db)
    seen = resumable(app)
    first = app.enqueue(Message("resumable"))
    second = app.enqueue(Message("resumable"))
    InlineConsumer(app, "c1").execute(app.storage.claim(["default"], 1, LEASE_S, "c1")[0])
    assert seen == [None]  # `first` handed itself back with its checkpoint

    copy = "SET checkpoint = (SELECT checkpoint FROM scoter_tasks WHERE id = ?) WHERE id = ?"
    tamper(db, f"UPDATE scoter_tasks {copy}", first.id, second.id)
    app.run_pending()
    assert seen == [None, 3]  # `first` resumed; `second` never got past its checkpoint
    assert first.get() == 3
    assert "is not trusted" in (info(app, second.id).error or "")


# -- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    ["", b"", [], [""], [b""], "k" * (MIN_KEY_BYTES - 1), [KEY, "short"], [KEY, ""]],
    ids=["empty str", "empty bytes", "no keys", "[empty]", "[empty bytes]", "15 bytes",
         "second key short", "second key empty"],
)  # fmt: skip
def test_empty_or_short_keys_are_a_configuration_error(keys: Any) -> None:
    with pytest.raises(ConfigurationError, match="secret") as raised:
        Scoter("signing", "memory://", secret_keys=keys)
    assert "None" in str(raised.value)  # says how to turn signing off on purpose


def test_a_key_of_the_minimum_length_signs_and_none_means_no_signing() -> None:
    assert Scoter("signing", "memory://", secret_keys="k" * MIN_KEY_BYTES).signer is not None
    assert Scoter("signing", "memory://", secret_keys=None).signer is None


def test_key_rotation_the_new_key_signs_the_old_one_still_verifies(db: Path) -> None:
    old_producer = signed_app(db, [OLD])
    consumer = signed_app(db, [KEY, OLD])
    new_only = signed_app(db, [KEY])
    for app in (old_producer, consumer, new_only):
        greet_and_purge(app)

    result = old_producer.enqueue(Message("greet", ("alice",)))
    assert consumer.run_pending() == 1
    assert consumer.result(result.id).get() == "hello alice"
    with pytest.raises(DecodeError):  # the consumer signed the result with the new key
        old_producer.result(result.id).get()

    retired = old_producer.enqueue(Message("greet", ("bob",)))
    new_only.run_pending()
    assert_dead_undecodable(new_only, retired.id, "bad signature")


# -- an app without keys ----------------------------------------------------------------------


def test_an_app_without_keys_runs_signed_tasks_and_warns_once(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    producer = signed_app(db)
    keyless = Scoter("signing", f"sqlite:///{db}")
    greet_and_purge(producer)
    calls = greet_and_purge(keyless)
    first = producer.enqueue(Message("greet", ("alice",)))
    producer.enqueue(Message("greet", ("bob",)))

    with caplog.at_level(logging.WARNING, logger="scoter"):
        assert keyless.run_pending() == 2
    assert calls == [("greet", "alice"), ("greet", "bob")]
    warnings = [r.getMessage() for r in caplog.records if "no secret_keys" in r.getMessage()]
    assert len(warnings) == 1
    with pytest.raises(DecodeError, match="not signed"):  # its results are not signed
        producer.result(first.id).get()
    assert keyless.result(first.id).get() == "hello alice"


def test_signer_refuses_a_key_that_is_not_text_or_bytes() -> None:
    with pytest.raises(ConfigurationError, match="not a str or bytes"):
        Signer([KEY, 12345678901234567890])  # type: ignore[list-item]


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_SECRET_KEYS, raising=False)
    assert secret_keys_from_env() is None
    monkeypatch.setenv(ENV_SECRET_KEYS, f" {KEY} , {OLD} ")
    assert secret_keys_from_env() == [KEY, OLD]


@pytest.mark.parametrize("value", ["", "  ", ",", f"{KEY},short", f"{KEY},"])
def test_keys_from_the_environment_set_but_empty_or_short_are_an_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(ENV_SECRET_KEYS, value)
    with pytest.raises(ConfigurationError, match=f"\\${ENV_SECRET_KEYS}"):
        secret_keys_from_env()
