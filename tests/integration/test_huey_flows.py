"""Huey's pipelines and chords on scoter.huey, as Huey runs them: argument order, the
exception an error handler gets, nested chords, a pipeline as a chord's callback, empty chords,
dead members that the callback still hears of, and the signals of a chord."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scoter.flows import MEMBER
from scoter.huey import SKIPPED, Error, MemoryHuey, SqliteHuey, chord
from scoter.huey.exceptions import TaskException
from scoter.huey.signals import SIGNAL_COMPLETE, SIGNAL_ENQUEUED, SIGNAL_ERROR, SIGNAL_EXECUTING
from scoter.states import State


class Boom(Exception):
    pass


@pytest.fixture(params=["memory", "sqlite"])
def huey(request: pytest.FixtureRequest, tmp_path: Path) -> MemoryHuey | SqliteHuey:
    if request.param == "memory":
        return MemoryHuey("flows", utc=False)
    return SqliteHuey("flows", filename=str(tmp_path / "huey.db"), utc=False)


def run_next(huey: Any) -> Any:
    task = huey.dequeue()
    assert task is not None
    return huey.execute(task)


def test_a_dict_result_fills_only_the_keyword_arguments_a_step_was_not_given(huey: Any) -> None:
    @huey.task()
    def state(v1: Any = None, v2: Any = None) -> dict[str, Any]:
        return {"v1": v1, "v2": v2}

    results = huey.enqueue(state.s(v1=1, v2=2).then(state, v2="own"))
    run_next(huey), run_next(huey)
    assert results[1] == {"v1": 1, "v2": "own"}


def test_an_error_handler_gets_the_exception_the_step_raised(huey: Any) -> None:
    seen: list[str] = []

    @huey.task()
    def fails(n: int) -> None:
        raise Boom(n)

    @huey.task()
    def handler(tag: str, exc: BaseException) -> None:
        seen.append(f"{tag} {exc!r}")

    result = huey.enqueue(fails.s(7).error(handler, "tag"))
    assert run_next(huey) is None
    with pytest.raises(TaskException):
        result.get()
    run_next(huey)
    assert seen == ["tag Boom(7)"]


def test_chords_nest_and_a_callback_may_be_a_pipeline(huey: Any) -> None:
    @huey.task()
    def ident(v: Any) -> Any:
        return v

    @huey.task()
    def agg(vs: list[Any]) -> list[Any]:
        return vs

    @huey.task()
    def size(vs: list[Any]) -> int:
        return len(vs)

    inner = chord([ident.s("a"), ident.s("b")], agg.s().then(size))
    r = huey.enqueue(chord([inner, ident.s("c")], agg))
    assert len(huey) == 3
    assert [run_next(huey) for _ in range(3)] == ["a", "b", "c"]
    assert run_next(huey) == ["a", "b"]
    assert run_next(huey) == 2
    assert run_next(huey) == [2, "c"]
    assert len(huey) == 0
    assert r() == [2, "c"]


def test_an_empty_chord_runs_its_callback_with_no_results(huey: Any) -> None:
    @huey.task()
    def agg(vs: list[Any]) -> int:
        return len(vs)

    r = huey.enqueue(chord([], agg))
    assert run_next(huey) == 0 and r() == 0


def test_a_dead_member_gives_the_callback_an_error_and_stays_dead(huey: Any) -> None:
    @huey.task()
    def member(n: int) -> int:
        if n < 0:
            raise Boom("bad")
        return n

    @huey.task()
    def agg(vs: list[Any]) -> list[Any]:
        return vs

    r = huey.enqueue(chord([member.s(1), member.s(-1)], agg))
    assert run_next(huey) == 1
    assert run_next(huey) is None
    assert len(huey) == 1  # the callback; the member's stand-in already ran
    ok, err = run_next(huey)
    assert ok == 1 and isinstance(err, Error) and err.metadata["error"] == "Boom('bad')"
    with pytest.raises(TaskException):
        r.results[1]
    dead = huey.app.storage.get(list(r.results)[1].id)
    assert dead is not None and dead.state is State.DEAD  # kept for the operator


def test_skipped_survives_the_serializer_as_the_same_object(huey: Any) -> None:
    stored = huey.app.encode_value(SKIPPED, MEMBER, "chord:0")
    assert huey.app.decode_value(stored, MEMBER, "chord:0") is SKIPPED


def test_a_chord_sends_enqueued_for_its_callback(huey: Any) -> None:
    sent: list[str] = []

    @huey.signal()
    def receive(signal: str, task: Any, *args: Any) -> None:
        sent.append(signal)

    @huey.task()
    def bad() -> None:
        raise Boom("fail")

    @huey.task()
    def combine(results: list[Any]) -> list[Any]:
        return results

    huey.enqueue(chord([bad.s()], combine.s()))
    run_next(huey), run_next(huey)
    assert sent == [SIGNAL_ENQUEUED, SIGNAL_EXECUTING, SIGNAL_ERROR, SIGNAL_ENQUEUED,
                    SIGNAL_EXECUTING, SIGNAL_COMPLETE]  # fmt: skip


def test_a_steps_error_handler_runs_only_when_that_step_fails(huey: Any) -> None:
    seen: list[str] = []

    @huey.task()
    def step(n: int) -> int:
        if n < 1:
            raise Boom(n)
        return n - 1

    @huey.task()
    def handler(tag: str, exc: BaseException) -> None:
        seen.append(f"{tag} {exc!r}")

    first_fails = step.s(0).then(step)
    first_fails.on_complete.error(handler, "second")
    huey.enqueue(first_fails)
    run_next(huey)
    assert len(huey) == 0 and seen == []

    second_fails = step.s(1).then(step)
    second_fails.on_complete.error(handler, "second")
    second_fails.error(handler, "first")
    huey.enqueue(second_fails)
    run_next(huey), run_next(huey), run_next(huey)
    assert len(huey) == 0 and seen == ["second Boom(0)"]


def test_an_error_handlers_error_handler_gets_the_handlers_exception(huey: Any) -> None:
    seen: list[tuple[str, str]] = []

    @huey.task()
    def fails(n: int) -> None:
        raise Boom(f"step {n}")

    @huey.task()
    def handler(tag: str, exc: BaseException) -> None:
        seen.append((tag, repr(exc)))
        if tag == "first":
            raise Boom("handler")

    pipe = fails.s(1).error(handler, "first").error(handler, "second")
    result = huey.enqueue(pipe)
    run_next(huey), run_next(huey), run_next(huey)
    assert seen == [("first", "Boom('step 1')"), ("second", "Boom('handler')")]
    assert len(huey) == 0
    with pytest.raises(TaskException):
        result.get()
