"""The size limits of an app: `max_message_bytes` at enqueue, `max_result_bytes` where a
result is encoded; each error names the size, the limit and the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoter import ConfigurationError, Message, Scoter, State, TooLarge
from scoter.app import DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_RESULT_BYTES


def _app(**options: object) -> Scoter:
    app = Scoter("limits", "memory://", **options)  # type: ignore[arg-type]

    @app.task
    def echo(value: str) -> str:
        return value

    return app


def test_the_defaults_are_one_mebibyte() -> None:
    app = Scoter("limits", "memory://")
    assert (app.max_message_bytes, app.max_result_bytes) == (1 << 20, 1 << 20)
    assert DEFAULT_MAX_MESSAGE_BYTES == DEFAULT_MAX_RESULT_BYTES == 1 << 20


def test_enqueue_of_a_message_over_the_limit_raises_and_stores_nothing() -> None:
    app = _app()
    echo = app.tasks["echo"]
    value = "x" * DEFAULT_MAX_MESSAGE_BYTES
    size = len(app.encode_message(Message("echo", (value,))))

    with pytest.raises(TooLarge) as raised:
        echo(value)

    message = str(raised.value)
    assert f"the message of task 'echo' is {size:,} bytes" in message
    assert "over the limit of 1,048,576 (max_message_bytes)" in message
    assert "Scoter(..., max_message_bytes=...)" in message
    assert isinstance(raised.value, ValueError)
    assert app.storage.counts() == {}


def test_enqueue_many_with_one_message_over_the_limit_stores_none_of_them() -> None:
    app = _app(max_message_bytes=100)
    messages = [Message("echo", ("small",)), Message("echo", ("x" * 200,))]
    with pytest.raises(TooLarge, match=r"is 2\d\d bytes, over the limit of 100 "):
        app.enqueue_many(messages)
    assert app.storage.counts() == {}


def test_a_message_at_the_limit_is_enqueued_and_none_lifts_it() -> None:
    app = _app()
    app.max_message_bytes = len(app.encode_message(Message("echo", ("x",))))
    app.tasks["echo"]("x")
    unlimited = _app(max_message_bytes=None)
    unlimited.tasks["echo"]("x" * (2 * DEFAULT_MAX_MESSAGE_BYTES))
    assert app.storage.counts() == unlimited.storage.counts() == {("default", State.QUEUED): 1}


@pytest.mark.parametrize("option", ["max_message_bytes", "max_result_bytes"])
@pytest.mark.parametrize("value", [0, -1, 1.5, "1MB", True])
def test_a_limit_that_is_not_a_positive_whole_number_is_refused(option: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"{option} must be a positive number"):
        Scoter("limits", "memory://", **{option: value})  # type: ignore[arg-type]


def test_a_result_over_the_limit_fails_the_attempt_as_an_error(tmp_path: Path) -> None:
    app = Scoter("limits", f"sqlite:///{tmp_path / 'q.db'}", max_result_bytes=100)

    @app.task(retries=1)
    def echo(value: str) -> str:
        return value

    big, small = echo("x" * 200), echo("x" * 10)
    assert app.run_pending() == 3  # big twice: its retry fails alike

    info = app.storage.get(big.id)
    assert info is not None and (info.state, info.reason, info.errors) == (State.DEAD, "error", 2)
    assert "TooLarge: the task's result is 202 bytes, over the limit of 100" in (info.error or "")
    assert small.get() == "x" * 10
