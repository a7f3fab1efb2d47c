"""Error handlers of flows: a step's own over its pipeline's, an error handler's own handler,
their ids and payloads; and a unique call in a flow (refused where a live holder of its key
would leave the flow unstored; a lone member's Result is the holder's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scoter import Message, Scoter, State, TaskFailed, flows, group
from scoter.flows_wire import Call, StepFlow
from scoter.result import NOT_RUN


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'app.db'}"


class Tasks:
    """An app whose tasks record who handled which failure."""

    def __init__(self, app: Scoter) -> None:
        self.app = app
        self.handled: list[tuple[str, str, str]] = []
        """(tag, the failed task's id, its reason), in the order the handlers ran."""

        @app.task
        def add(a: int, b: int = 0) -> int:
            return a + b

        @app.task
        def boom(value: Any = None) -> None:
            raise ValueError(f"boom {value}")

        @app.task
        def handler(failure: TaskFailed, tag: str) -> str:
            self.handled.append((tag, failure.task_id, failure.reason))
            return tag

        @app.task
        def failing_handler(failure: TaskFailed, tag: str) -> None:
            self.handled.append((tag, failure.task_id, failure.reason))
            raise RuntimeError(f"{tag} failed too")

        @app.task(unique=True)
        def refresh(n: int) -> int:
            return n

        self.add, self.boom, self.handler = add, boom, handler
        self.failing_handler, self.refresh = failing_handler, refresh


@pytest.fixture
def tasks(url: str) -> Tasks:
    return Tasks(Scoter("errors", url, immediate=True))


@pytest.fixture
def queued(url: str) -> Tasks:
    return Tasks(Scoter("errors", url))


def test_a_steps_own_handler_runs_for_that_step_alone(tasks: Tasks) -> None:
    step = tasks.boom.s().error(tasks.handler, "own")
    pipeline = tasks.add.s(1).then(step).then(tasks.add).error(tasks.handler, "pipeline")

    results = tasks.app.enqueue(pipeline)

    assert tasks.handled == [("own", results.ids[1], "error")]
    assert tasks.app.storage.get(f"{pipeline.id}.1.error") is not None
    assert tasks.app.storage.get(f"{pipeline.id}.error") is None
    with pytest.raises(TaskFailed) as not_run:
        results[2].get(blocking=True, timeout=5)
    assert not_run.value.reason == NOT_RUN


def test_the_pipelines_handler_runs_for_a_step_with_none_of_its_own(tasks: Tasks) -> None:
    own = tasks.add.s().error(tasks.handler, "own")
    pipeline = tasks.boom.s(1).then(own).error(tasks.handler, "pipeline")

    results = tasks.app.enqueue(pipeline)

    assert tasks.handled == [("pipeline", results.ids[0], "error")]
    assert tasks.app.storage.get(f"{pipeline.id}.error") is not None


def test_a_step_without_a_handler_stores_none_when_only_another_step_has_one(
    tasks: Tasks,
) -> None:
    pipeline = tasks.boom.s(1).then(tasks.add.s().error(tasks.handler, "second"))

    tasks.app.enqueue(pipeline)

    assert tasks.handled == []
    assert [t.id for t in tasks.app.storage.list_tasks(State.QUEUED, limit=10)] == []


def test_an_error_handlers_own_handler_gets_the_handlers_failure(tasks: Tasks) -> None:
    first = tasks.failing_handler.s("first").error(tasks.handler, "second")
    pipeline = tasks.boom.s(1).error(first)

    results = tasks.app.enqueue(pipeline)

    handler_id = f"{pipeline.id}.error"
    assert tasks.handled == [("first", results.ids[0], "error"),
                             ("second", handler_id, "error")]  # fmt: skip
    info = tasks.app.storage.get(handler_id)
    assert info is not None and info.state is State.DEAD
    second = tasks.app.storage.get(f"{handler_id}.error")
    assert second is not None and second.state is State.DONE


def test_a_handler_that_succeeds_stores_nothing_more(tasks: Tasks) -> None:
    pipeline = tasks.boom.s(1).error(tasks.handler.s("first").error(tasks.handler, "second"))

    tasks.app.enqueue(pipeline)

    assert [tag for tag, _, _ in tasks.handled] == ["first"]
    assert tasks.app.storage.get(f"{pipeline.id}.error.error") is None


def test_handlers_are_checked_against_their_tasks_at_enqueue(tasks: Tasks) -> None:
    with pytest.raises(TypeError):
        tasks.app.enqueue(tasks.add.s(1).then(tasks.add.s().error(tasks.handler)))
    with pytest.raises(TypeError):
        nested = tasks.handler.s("tag").error(tasks.handler, "a", "b")
        tasks.app.enqueue(tasks.add.s(1).error(nested))


def test_a_pipeline_of_several_steps_is_no_step(tasks: Tasks) -> None:
    with pytest.raises(TypeError, match="steps"):
        tasks.add.s(1).then(tasks.add.s(2).then(tasks.add))


def test_a_step_carries_its_own_handler_in_its_payload(queued: Tasks) -> None:
    step = queued.add.s().error(queued.handler, "own")
    pipeline = queued.add.s(1).then(step).error(queued.handler, "pipeline")
    queued.app.enqueue(pipeline)
    info = queued.app.storage.get(pipeline.id)
    assert info is not None
    flow = flows.flow_of(queued.app, info)
    assert flow is not None and flow.own is None
    assert flow.handler is not None and flow.handler[0] == f"{pipeline.id}.error"
    following = flow.following()
    assert following.handler is not None and following.handler[0] == f"{pipeline.id}.1.error"
    assert following.handler[1].args == ("own",)


def test_a_flow_written_before_per_step_handlers_reads_the_same() -> None:
    old = {"id": "p", "step": 0, "next": [["add", [], {}, None, None]],
           "error": ["handler", ["tag"], {}, None, None]}  # fmt: skip
    flow = StepFlow.read(old)
    assert flow.handler == ("p.error", Call("handler", ("tag",)))
    assert flow.following().handler == ("p.error", Call("handler", ("tag",)))
    assert StepFlow.read(flow.wire()) == flow


# -- unique calls in flows -------------------------------------------------------------------


def test_a_unique_first_step_is_refused_and_stores_nothing(queued: Tasks) -> None:
    holder = queued.refresh(7)
    pipeline = queued.refresh.s(7).then(queued.add, 1)

    with pytest.raises(ValueError, match="unique"):
        queued.app.enqueue(pipeline)

    assert queued.app.storage.get(pipeline.id) is None
    assert [t.id for t in queued.app.storage.list_tasks(State.QUEUED, limit=10)] == [holder.id]


@pytest.mark.parametrize("how", ["handler", "member", "key"])
def test_a_unique_call_with_a_handler_or_in_a_chord_is_refused(queued: Tasks, how: str) -> None:
    if how == "handler":
        flow: Any = queued.refresh.s(7).error(queued.handler, "tag")
    elif how == "member":
        flow = group([queued.refresh.s(7), queued.add.s(1)]).then(queued.add.s())
    else:
        flow = Message("errors.add", (1,), unique_key="k").then(queued.add)
    with pytest.raises(ValueError, match="unique"):
        queued.app.enqueue(flow)


def test_a_lone_unique_member_of_a_group_gives_the_holders_result(queued: Tasks) -> None:
    holder = queued.refresh(7)

    results = queued.app.enqueue(group([queued.refresh.s(7), queued.add.s(1)]))

    assert results.ids[0] == holder.id
    queued.app.run_pending()
    assert results.get(blocking=True, timeout=5) == [7, 1]
