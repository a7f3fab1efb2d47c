"""Pipelines, groups and chords on the embedded backends: what each step is given, the ids,
the results in order, error handlers, a chord that waits for a dead member, signing, and
the mistakes a caller can make."""

from __future__ import annotations

import dataclasses
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from scoter import (
    Chord,
    ChordResult,
    ConfigurationError,
    Pipeline,
    ResultGroup,
    Scoter,
    State,
    TaskContext,
    TaskFailed,
    chord,
    flows,
    group,
)
from scoter.consumer.attempt import Outcome
from scoter.flows import MEMBER
from scoter.result import NOT_RUN
from scoter.storage.base import Ack, Flow, Join, NewTask

from .attempts import InlineConsumer

SECRET = "k" * 32


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'app.db'}"


class Calls:
    """An app with tasks that record how they were called."""

    def __init__(self, app: Scoter) -> None:
        self.app = app
        self.seen: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

        @app.task
        def add(a: int, b: int = 0) -> int:
            self.seen.append(("add", (a, b), {}))
            return a + b

        @app.task
        def pair(previous: Any, *rest: Any, **options: Any) -> list[Any]:
            self.seen.append(("pair", (previous, *rest), options))
            return [previous, *rest]

        @app.task
        def total(results: list[int], extra: int = 0) -> int:
            self.seen.append(("total", (results,), {"extra": extra}))
            return sum(results) + extra

        @app.task(retries=1)
        def boom(value: Any) -> None:
            self.seen.append(("boom", (value,), {}))
            raise ValueError(f"boom {value}")

        @app.task
        def on_error(failure: TaskFailed, tag: str = "") -> str:
            self.seen.append(("on_error", (failure.task_id, failure.reason, tag), {}))
            return tag

        self.add, self.pair, self.total, self.boom, self.on_error = add, pair, total, boom, on_error

    def names(self) -> list[str]:
        return [name for name, _, _ in self.seen]


@pytest.fixture
def calls(url: str) -> Calls:
    return Calls(Scoter("unit", url, immediate=True))


@pytest.fixture
def queued(url: str) -> Calls:
    """Tasks wait in the storage until `run_pending`."""
    return Calls(Scoter("unit", url))


# -- pipelines -------------------------------------------------------------------------------


def test_each_step_gets_the_previous_result_first(calls: Calls) -> None:
    pipeline = calls.add.s(1, 2).then(calls.add, 3).then(calls.pair, "x", key="y")

    results = calls.app.enqueue(pipeline)

    assert isinstance(results, ResultGroup)
    assert results.get() == [3, 6, [6, "x"]]
    assert calls.seen == [
        ("add", (1, 2), {}), ("add", (3, 3), {}), ("pair", (6, "x"), {"key": "y"}),
    ]  # fmt: skip


def test_step_ids_derive_from_the_first_steps_id(queued: Calls) -> None:
    first = queued.add.s(1, 2)
    pipeline = first.then(queued.add, 3).then(queued.add.s(4))

    results = queued.app.enqueue(pipeline)

    assert results.ids == [first.id, f"{first.id}.1", f"{first.id}.2"]
    assert pipeline.id == first.id
    assert queued.app.storage.counts() == {("default", State.QUEUED): 1}  # one step at a time
    assert results[1].state is None and results.get() == [None, None, None]
    queued.app.run_pending()
    assert results.get() == [3, 6, 10]
    assert [r.state for r in results] == [State.DONE] * 3


def test_a_message_given_to_then_brings_its_arguments_not_its_id(queued: Calls) -> None:
    later = queued.add.s(10)
    results = queued.app.enqueue(queued.add.s(1, 2).then(later))
    queued.app.run_pending()
    assert results.get() == [3, 13]
    assert later.id not in results.ids


def test_none_and_tuples_are_passed_as_one_first_argument(calls: Calls) -> None:
    results = calls.app.enqueue(calls.pair.s(None).then(calls.pair).then(calls.pair, (1, 2)))
    assert results.get() == [[None], [[None]], [[[None]], (1, 2)]]


def test_get_waits_for_steps_not_stored_yet(queued: Calls) -> None:
    results = queued.app.enqueue(queued.add.s(1, 1).then(queued.add, 1).then(queued.add, 1))
    runner = threading.Timer(0.2, queued.app.run_pending)
    runner.start()
    try:
        assert results[2].get(blocking=True, timeout=10) == 4
    finally:
        runner.join()


def test_a_dead_step_stops_the_pipeline_and_stores_its_error_handler(calls: Calls) -> None:
    pipeline = calls.add.s(1, 2).then(calls.boom).then(calls.add, 5).error(calls.on_error, "tag")

    results = calls.app.enqueue(pipeline)

    assert calls.names() == ["add", "boom", "boom", "on_error"]
    assert calls.seen[-1] == ("on_error", (results.ids[1], "error", "tag"), {})
    with pytest.raises(TaskFailed) as failed:
        results.get(blocking=True, timeout=5)
    assert failed.value.task_id == results.ids[1]
    with pytest.raises(TaskFailed) as not_run:
        results[2].get(blocking=True, timeout=5)
    assert not_run.value.reason == NOT_RUN and results.ids[1] in str(not_run.value)
    handler = calls.app.storage.get(f"{pipeline.id}.error")
    assert handler is not None and handler.state is State.DONE


def test_the_error_handler_is_given_the_end_of_the_traceback(queued: Calls) -> None:
    queued.app.enqueue(queued.boom.s("x").error(queued.pair))
    queued.app.run_pending()

    failure = queued.seen[-1][1][0]
    assert isinstance(failure, TaskFailed) and failure.reason == "error"
    assert failure.error is not None and failure.error.rstrip().endswith("ValueError: boom x")


def test_retrying_a_dead_step_resumes_its_pipeline(calls: Calls) -> None:
    flaky = {"fail": True}

    @calls.app.task
    def once(value: int) -> int:
        if flaky.pop("fail", False):
            raise RuntimeError("not yet")
        return value * 10

    results = calls.app.enqueue(calls.add.s(1, 2).then(once).then(calls.add, 1))
    with pytest.raises(TaskFailed):
        results.get()

    assert calls.app.storage.requeue_dead([results.ids[1]]) == 1
    calls.app.run_pending()

    assert results.get() == [3, 30, 31]


# -- groups, map and chords ------------------------------------------------------------------


def test_a_group_runs_its_members_and_gathers_their_results(calls: Calls) -> None:
    members = [calls.add.s(i, i) for i in range(4)] + [calls.add.s(10).then(calls.add, 1)]
    results = calls.app.enqueue(group(members))

    assert isinstance(results, ResultGroup)
    assert results.get() == [0, 2, 4, 6, 11]
    assert len(results) == 5 and [r.id for r in results] == results.ids


def test_map_returns_a_result_group(calls: Calls) -> None:
    results = calls.add.map([(1, 2), (3, 4)])
    assert isinstance(results, ResultGroup)
    assert results(blocking=True, timeout=5) == [3, 7]


def test_a_chord_gives_its_callback_every_result_in_member_order(queued: Calls) -> None:
    members = [queued.add.s(i, 100) for i in range(5)]
    the_chord = group(members).then(queued.total, extra=1000)
    assert isinstance(the_chord, Chord)

    result = queued.app.enqueue(the_chord)

    assert isinstance(result, ChordResult) and result.id == the_chord.id
    consumer = InlineConsumer(queued.app, "c1")
    leases = queued.app.storage.claim(["default"], 5, 30, "c1")
    for lease in reversed(leases):  # members finish in the opposite order
        consumer.execute(lease)
    assert queued.app.storage.get(result.id) is not None
    queued.app.run_pending()
    assert result.get() == 1000 + sum(range(5)) + 500
    assert result.results.get() == [100, 101, 102, 103, 104]
    assert queued.seen[-1] == ("total", ([100, 101, 102, 103, 104],), {"extra": 1000})
    assert queued.app.storage.chord_info(result.id) is None  # released by the callback's ack


def test_a_chord_member_may_be_a_pipeline_and_the_callback_may_chain(calls: Calls) -> None:
    members = [calls.add.s(1, 1).then(calls.add, 1), calls.add.s(5)]
    result = calls.app.enqueue(group(members).then(calls.total).then(calls.add, 1000))

    assert result.get() == 8
    assert result.pipeline_results is not None
    assert result.pipeline_results.get() == [8, 1008]
    assert result.results.get() == [3, 5]


def test_chord_lends_the_callback_messages_id_to_the_chord(calls: Calls) -> None:
    callback = calls.total.s(extra=1)
    result = calls.app.enqueue(chord([calls.add.s(1), calls.add.s(2)], callback))
    assert result.id == callback.id and result.get() == 4


def test_a_chord_with_a_dead_member_waits_and_resumes_when_it_is_retried(calls: Calls) -> None:
    flaky = {"fail": True}

    @calls.app.task
    def member(value: int) -> int:
        if flaky.pop("fail", False):
            raise RuntimeError("not yet")
        return value

    members = [member.s(1), calls.add.s(2), calls.add.s(3)]
    result = calls.app.enqueue(group(members).error(calls.on_error, "member").then(calls.total))

    assert "total" not in calls.names()
    assert calls.seen[-1][0] == "on_error" and calls.seen[-1][1][2] == "member"
    info = calls.app.storage.chord_info(result.id)
    assert info is not None and (info.size, sorted(info.results)) == (3, [1, 2])
    with pytest.raises(TaskFailed) as not_run:
        result.get(blocking=True, timeout=5)
    assert not_run.value.reason == NOT_RUN

    calls.app.storage.requeue_dead([result.results.ids[0]])
    calls.app.run_pending()

    assert result.get() == 6
    assert calls.names().count("total") == 1


def test_a_chord_callbacks_own_error_handler(calls: Calls) -> None:
    result = calls.app.enqueue(
        group([calls.add.s(1)]).then(calls.boom).error(calls.on_error, "callback")
    )
    with pytest.raises(TaskFailed):
        result.get()
    assert calls.seen[-1] == ("on_error", (result.id, "error", "callback"), {})


def test_chords_nest_a_members_end_is_its_callbacks_last_step(calls: Calls) -> None:
    inner = group([calls.add.s(1), calls.add.s(2)]).then(calls.total).then(calls.add, 100)
    outer = group([inner, calls.add.s(10)]).then(calls.pair)

    result = calls.app.enqueue(outer)

    assert result.get() == [[103, 10]]
    assert result.results.get() == [103, 10]
    assert calls.app.storage.chord_info(inner.id) is None  # each callback released its own
    assert calls.app.storage.chord_info(outer.id) is None


def test_an_empty_chord_stores_its_callback_at_once_with_no_results(calls: Calls) -> None:
    result = calls.app.enqueue(group([]).then(calls.total, extra=5))
    assert result.get() == 5 and result.results.get() == []
    assert calls.app.enqueue(group([])).get() == []


def test_a_chords_callback_may_be_a_pipeline(calls: Calls) -> None:
    callback = calls.total.s().then(calls.add, 1)
    result = calls.app.enqueue(chord([calls.add.s(1), calls.add.s(2)], callback))
    assert result.id == callback.id
    assert result.pipeline_results is not None and result.pipeline_results.get() == [3, 4]


def test_a_stand_in_counts_a_dead_member_and_the_member_stays_dead(calls: Calls) -> None:
    @calls.app.task
    def placeholder(failure: TaskFailed) -> str:
        return f"{failure.reason}: {failure.exception!r}"

    members = [calls.add.s(1), calls.boom.s("x")]
    the_chord = group(members).then(calls.pair).standing_in(placeholder.name)
    result = calls.app.enqueue(the_chord)

    assert result.get() == [[1, "error: None"]]  # JSON carries no exception
    info = calls.app.storage.get(result.results.ids[1])
    assert info is not None and info.state is State.DEAD


# -- signing, transport ----------------------------------------------------------------------


def test_flows_run_signed_and_a_forged_member_result_is_refused(tmp_path: Path) -> None:
    calls = Calls(Scoter("unit", f"sqlite:///{tmp_path / 'app.db'}", secret_keys=[SECRET]))
    result = calls.app.enqueue(group([calls.add.s(1), calls.add.s(2)]).then(calls.total))
    first, second = calls.app.storage.claim(["default"], 2, 30, "c1")
    InlineConsumer(calls.app, "c1").execute(first)
    step = flows.read(calls.app, second)
    assert step is not None
    handed_on = flows.after_success(calls.app, step, 2)
    assert handed_on.join is not None
    forged = calls.app.encode_value(99, MEMBER, f"{result.id}:0")  # member 0's, not 1's
    flow = Flow(join=dataclasses.replace(handed_on.join, result=forged))
    [landed], _ = calls.app.storage.ack_many_and_claim(
        [Ack(second.token, None, None, flow)], [], 0, 30, "c1"
    )
    assert landed

    calls.app.run_pending()

    with pytest.raises(TaskFailed, match=r"member of task .* is not trusted: bad signature"):
        result.get()
    assert "total" not in calls.names()


def test_a_steps_outcome_crosses_to_a_parent_process_with_its_hand_off() -> None:
    follow = NewTask("p.1", "add", "default", b"{}", 1, None, 2)
    join = Join("c", 0, 2, b"r", NewTask("c", "total", "default", b"{}"))
    outcome = Outcome.succeeded(b"3", 0.1, Flow((follow,), join, "old"))

    assert pickle.loads(pickle.dumps(outcome)) == outcome


def test_complete_in_refuses_a_flow_step(queued: Calls) -> None:
    seen: list[BaseException] = []

    @queued.app.task(context=True)
    def commits(previous: int, ctx: TaskContext) -> None:
        try:
            ctx.complete_in(None)  # type: ignore[arg-type]
        except ConfigurationError as exc:
            seen.append(exc)

    queued.app.enqueue(queued.add.s(1).then(commits))
    queued.app.run_pending()
    assert len(seen) == 1 and "pipeline or chord" in str(seen[0])


# -- mistakes --------------------------------------------------------------------------------


def test_bad_flows_are_refused_with_what_to_do(queued: Calls) -> None:
    add = queued.add
    with pytest.raises(TypeError, match="a task and its arguments, or a message alone"):
        add.s(1).then(add.s(2), 3)
    with pytest.raises(TypeError, match=r"decorated with @app\.task"):
        add.s(1).then(print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pipelines or chords, not <Group"):
        group([group([add.s(1)])])  # type: ignore[list-item]
    once = add.s(1)
    with pytest.raises(ValueError, match="is given twice"):
        group([once, once.then(add)])
    with pytest.raises(ValueError, match="is given twice"):
        chord([once], once)
    too_long = add.s(1)
    too_long = type(too_long)(too_long.task, too_long.args, id="x" * 199)
    with pytest.raises(ValueError, match="too long for the ids of its steps"):
        queued.app.enqueue(too_long.then(add))
    with pytest.raises(TypeError, match="task 'add' cannot be called with these arguments"):
        queued.app.enqueue(add.s(1).then(add, 2, 3))  # add(previous, 2, 3): one too many
    with pytest.raises(TypeError, match="task 'total' cannot be called"):
        queued.app.enqueue(group([add.s(1)]).then(queued.total, 1, 2))
    assert queued.app.storage.counts() == {}


def test_a_malformed_flow_goes_dead_as_undecodable(queued: Calls) -> None:
    bad = queued.app._new_task("bad", "add", (1,), {}, None, None, None, None, flow={"id": 5})
    queued.app.storage.enqueue([bad])
    queued.app.run_pending()
    info = queued.app.storage.get("bad")
    assert info is not None and info.reason == "undecodable" and "flow" in (info.error or "")


def test_pipeline_and_chord_reprs_name_their_tasks(queued: Calls) -> None:
    pipeline = queued.add.s(1).then(queued.add)
    assert isinstance(pipeline, Pipeline)
    assert repr(pipeline) == f"<Pipeline {pipeline.id}: add -> add>"
    assert "of 2 -> total" in repr(group([queued.add.s(1), queued.add.s(2)]).then(queued.total))
    assert time.time() > 0
