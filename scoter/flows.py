"""Pipelines, groups and chords, with Huey's names: `a.s(1, 2).then(b, 3).error(h)`,
`group([...])`, `group([...]).then(callback)` (a chord), `chord(members, callback)`.

A flow is stored one step at a time. Each step's payload carries what comes after it (its
`StepFlow`, scoter.flows_wire, signed with the rest of the payload): the calls still to come,
the error handlers, the chord it ends in. When a step succeeds, the consumer builds the next
step — the step's return value first among its arguments — and hands it to the storage with the ack
(`storage.base.Flow`), which stores both in one atomic step, only if the ack lands: a crash
between them cannot lose or repeat the hand-off, and a stale attempt (its lease lost) hands
nothing on. Step ids derive from the flow's id — `<id>`, `<id>.1`, `<id>.2`, …, `<id>.error`
(the pipeline's error handler) and `<id>.<k>.error` (step k's own) — so no step can be stored
twice. A chord's members each count it down with
their ack; the one that completes the count stores the callback (whose id is the chord's),
which reads the members' results, in order, from the chord's record.
See docs/coordination-flows.md.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

from scoter.exceptions import ScoterError, TaskFailed
from scoter.flows_wire import ERROR_SUFFIX, Call, Callback, ChordJoin, StepFlow
from scoter.result import Result, ResultGroup
from scoter.signals import SIGNAL_ENQUEUED, TaskRef
from scoter.states import REVOKED
from scoter.storage.base import Flow, Join, Lease, NewTask, TaskInfo
from scoter.task import ID, ID_RULE, Message, Task

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.result import ChordResult

MEMBER = b"member"
"""What a chord member's result is, for its signature: sealed for `<chord>:<index>`, so that it
cannot pass for another member's or another chord's."""
ERROR_CHARS = 4000
"""The most of a dead step's error text its error handler is given (the end of it)."""


class FlowError(ScoterError):
    """A flow step cannot run as stored: its chord's results are missing."""


# -- building flows --------------------------------------------------------------------------


def call_of(task: Handed, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
    """The Call of `.then(task, *args, **kwargs)` or `.error(...)`: a task with arguments, or
    alone a message (`task.s(...)`) or a one-step pipeline, whose error handler becomes the
    call's own (`task.s(...).error(handler)`: a step's own, or an error handler's own)."""
    if isinstance(task, (Message, Pipeline)):
        if args or kwargs:
            raise TypeError("give .then() a task and its arguments, or a message alone")
        if isinstance(task, Message):
            return Call(task.task, task.args, task.kwargs, task.queue, task.priority)
        return task.as_call()
    if not isinstance(task, Task):
        raise TypeError(
            f"expected a task (a function decorated with @app.task) or task.s(...), not {task!r}"
        )
    return Call(task.name, args, kwargs)


class Pipeline:
    """Steps that run one after another: each is stored when the one before it succeeds and
    gets that one's return value as its first argument. Built by `task.s(...).then(...)`.

    Error handlers: each step may have its own (`first_error`, and each later `Call`'s
    `error`: `.then(task.s(...).error(handler))`); `on_error` (`.error(handler)`) is that of
    every step that has none of its own."""

    __slots__ = ("first", "first_error", "on_error", "steps")

    def __init__(
        self,
        first: Message,
        steps: tuple[Call, ...] = (),
        on_error: Call | None = None,
        first_error: Call | None = None,
    ) -> None:
        self.first = first
        self.steps = steps
        self.on_error = on_error
        self.first_error = first_error

    def __repr__(self) -> str:
        names = " -> ".join([self.first.task, *(c.task for c in self.steps)])
        return f"<Pipeline {self.id}: {names}>"

    @property
    def id(self) -> str:
        """The pipeline's id: its first step's; step k's is `<id>.k`."""
        return self.first.id

    def then(self, task: Handed, *args: Any, **kwargs: Any) -> Pipeline:
        """This pipeline with one more step: `task(previous result, *args, **kwargs)`; given
        `task.s(...).error(handler)`, the step has that error handler of its own."""
        steps = (*self.steps, call_of(task, args, kwargs))
        return Pipeline(self.first, steps, self.on_error, self.first_error)

    def error(self, task: Handed, *args: Any, **kwargs: Any) -> Pipeline:
        """This pipeline with an error handler for every step that has none of its own: when
        such a step ends dead, `task(failure, *args, **kwargs)` is stored with its death,
        `failure` a TaskFailed naming the step. Given `handler.s(...).error(other)`, `other`
        runs if the handler ends dead too, given the handler's failure."""
        return Pipeline(self.first, self.steps, call_of(task, args, kwargs), self.first_error)

    def as_call(self) -> Call:
        """A one-step pipeline as a later call of another flow, its error handler its own."""
        if self.steps:
            raise TypeError(
                f"{self!r} has {len(self.steps) + 1} steps: a step or an error handler is a "
                "task, task.s(...), or task.s(...).error(handler)"
            )
        m, own = self.first, self.first_error or self.on_error
        return Call(m.task, m.args, m.kwargs, m.queue, m.priority, own)

    def flow(self, join: ChordJoin | None = None) -> StepFlow:
        """The flow its first step carries."""
        return StepFlow(self.id, 0, self.steps, self.on_error, join, own=self.first_error)

    def results(
        self, app: Scoter, after: tuple[Result[Any], ...] = (), stored: dict[str, str] | None = None
    ) -> list[Result[Any]]:
        """A Result per step, each waiting on the one before; `stored`: the id stored for a
        first step (a lone unique call's may be that of the live task holding its key)."""
        flow = self.flow()
        first = self.id if stored is None else stored.get(self.id, self.id)
        results: list[Result[Any]] = [Result(app, first, after)]
        for step in range(1, len(self.steps) + 1):
            results.append(Result(app, flow.step_id(step), (results[-1],)))
        return results

    def handler_ids(self) -> list[str]:
        """The ids of its error handlers (and of theirs), as they would be stored."""
        flow = self.flow()
        errors = [self.first_error, *(c.error for c in self.steps)]
        owns = [(flow.own_error_id(k), handler) for k, handler in enumerate(errors)]
        ids = []
        for handler_id, handler in [*owns, (flow.error_id, self.on_error)]:
            if handler is not None:
                ids += [handler_id + ERROR_SUFFIX * d for d in range(len(handler.handlers()) + 1)]
        return ids


Handed: TypeAlias = "Task[Any, Any] | Message | Pipeline"
"""What `.then()` and `.error()` take: a task (with the call's arguments after it), or alone a
message (`task.s(...)`) or a message with its own error handler (`task.s(...).error(h)`)."""


class Group:
    """Tasks, pipelines or chords that run side by side: `group([a.s(1), a.s(2)])`."""

    __slots__ = ("members",)

    def __init__(self, members: Iterable[Message | Pipeline | Chord]) -> None:
        self.members = tuple(_member(m) for m in members)
        _check_distinct([i for m in self.members for i in _ids(m)])

    def __repr__(self) -> str:
        return f"<Group of {len(self.members)}>"

    def then(self, task: Task[Any, Any] | Message | Pipeline, *args: Any, **kwargs: Any) -> Chord:
        """A chord: once every member succeeded, `task(results, *args, **kwargs)` runs, with
        the members' results in a list, in the members' order. A message (`task.s(...)`) or a
        pipeline given alone lends its id to the chord (a pipeline: its steps follow)."""
        if isinstance(task, Pipeline):
            if args or kwargs:
                raise TypeError("give .then() a task and its arguments, or a pipeline alone")
            return Chord(self, task)
        if isinstance(task, Message):
            call_of(task, args, kwargs)  # refuses extra arguments
            return Chord(self, Pipeline(task))
        first = call_of(task, args, kwargs)
        return Chord(self, Pipeline(Message(first.task, first.args, first.kwargs)))

    def error(self, task: Handed, *args: Any, **kwargs: Any) -> Group:
        """Every member (that has none of its own) gets this error handler."""
        handler = call_of(task, args, kwargs)
        return Group(_with_error(m, handler) for m in self.members)


class Chord:
    """A group and a callback that runs once, with every member's result, when the last
    member succeeds. Its id is its callback's. An empty group's callback is stored at once,
    given an empty list. A chord may be a member of another: its callback's last step is
    that member's end."""

    __slots__ = ("callback", "group", "stand_in")

    def __init__(self, group: Group, callback: Pipeline, stand_in: str | None = None) -> None:
        _check_distinct([*(i for m in group.members for i in _ids(m)), callback.id])
        self.group = group
        self.callback = callback
        self.stand_in = stand_in
        """The name of a task that stands in for a member that ends dead (`ChordJoin`)."""

    def __repr__(self) -> str:
        return f"<Chord {self.id} of {len(self.group.members)} -> {self.callback.first.task}>"

    @property
    def id(self) -> str:
        return self.callback.id

    def then(self, task: Handed, *args: Any, **kwargs: Any) -> Chord:
        """Chain a step after the callback, as `Pipeline.then`."""
        return Chord(self.group, self.callback.then(task, *args, **kwargs), self.stand_in)

    def error(self, task: Handed, *args: Any, **kwargs: Any) -> Chord:
        """The error handler of the callback and the steps after it (members have their own:
        `group(...).error(...)`)."""
        return Chord(self.group, self.callback.error(task, *args, **kwargs), self.stand_in)

    def standing_in(self, stand_in: str | None) -> Chord:
        """This chord (and the chords among its members) with `stand_in` for dead members."""
        members = (m.standing_in(stand_in) if isinstance(m, Chord) else m
                   for m in self.group.members)  # fmt: skip
        return Chord(Group(members), self.callback, stand_in)


def group(members: Iterable[Message | Pipeline | Chord]) -> Group:
    """Tasks, pipelines or chords that run side by side; `.then(callback)` makes it a chord."""
    return Group(members)


def chord(
    members: Iterable[Message | Pipeline | Chord], callback: Task[Any, Any] | Message | Pipeline
) -> Chord:
    """`group(members).then(callback)`."""
    return Group(members).then(callback)


def _check_distinct(ids: list[str]) -> None:
    """Refuse a group or chord in which two of its tasks have one id: the second would not be
    stored (its id is live), and a chord would wait for it forever."""
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            raise ValueError(
                f"a group's members and its chord's callback need distinct ids; {task_id!r} "
                "is given twice (the same message used twice?): build one message per member"
            )
        seen.add(task_id)


def _member(member: Message | Pipeline | Chord) -> Pipeline | Chord:
    if isinstance(member, (Pipeline, Chord)):
        return member
    if isinstance(member, Message):
        return Pipeline(member)
    raise TypeError(
        f"a group's members are task calls (task.s(...)), pipelines or chords, not {member!r}"
    )


def _ids(member: Pipeline | Chord) -> list[str]:
    """The ids a member stores under its own: a pipeline's, or a chord's and its members'."""
    if isinstance(member, Pipeline):
        return [member.id]
    return [*(i for m in member.group.members for i in _ids(m)), member.id]


def _with_error(member: Pipeline | Chord, handler: Call) -> Pipeline | Chord:
    if isinstance(member, Chord):
        return Chord(Group(_with_error(m, handler) for m in member.group.members),
                     member.callback, member.stand_in)  # fmt: skip
    if member.on_error is not None:
        return member
    return Pipeline(member.first, member.steps, handler, member.first_error)


# -- enqueueing ------------------------------------------------------------------------------


def enqueue(app: Scoter, flow: Pipeline | Group | Chord) -> ResultGroup | ChordResult:
    """Store the first step of each pipeline in `flow` (in nested chords too), in one storage
    call."""
    from scoter.result import ChordResult

    if isinstance(flow, Pipeline):
        stored = _store(app, [(flow, None)])
        return ResultGroup(flow.results(app, stored=stored))
    if isinstance(flow, Group):
        stored = _store(app, [p for m in flow.members for p in _planned(m, None)])
        return ResultGroup([_end(app, m, stored) for m in flow.members])
    stored = _store(app, _planned(flow, None))
    ends = ResultGroup([_end(app, m, stored) for m in flow.group.members])
    steps = flow.callback.results(app, tuple(ends), stored)
    return ChordResult(ends, steps[0], ResultGroup(steps) if len(steps) > 1 else None)


def _planned(
    member: Pipeline | Chord, outer: ChordJoin | None
) -> list[tuple[Pipeline, ChordJoin | None]]:
    """The pipelines to store for a member, each with the chord it counts down. A chord's
    members count it down, its callback (`Callback.join`) the chord it belongs to; an empty
    chord's callback is stored at once, with an empty list of results."""
    if isinstance(member, Pipeline):
        return [(member, outer)]
    cb = member.callback
    _check_ids(cb)
    members = member.group.members
    if not members:
        first = dataclasses.replace(cb.first, args=([], *cb.first.args))
        return [(Pipeline(first, cb.steps, cb.on_error, cb.first_error), outer)]
    first = cb.first
    call = Call(first.task, first.args, first.kwargs, first.queue, first.priority, cb.first_error)
    callback = Callback(call, cb.steps, cb.on_error, outer)
    size = len(members)
    return [
        planned
        for i, m in enumerate(members)
        for planned in _planned(m, ChordJoin(member.id, i, size, callback, member.stand_in))
    ]


def _end(app: Scoter, member: Pipeline | Chord, stored: dict[str, str]) -> Result[Any]:
    """The Result of a member's last step: a pipeline's, or a chord's callback's."""
    if isinstance(member, Pipeline):
        return member.results(app, stored=stored)[-1]
    ends = tuple(_end(app, m, stored) for m in member.group.members)
    return member.callback.results(app, ends, stored)[-1]


def _store(app: Scoter, pipelines: list[tuple[Pipeline, ChordJoin | None]]) -> dict[str, str]:
    """Store the first step of each pipeline; returns the stored id of each lone unique call
    (a live task holding its key may stand for it)."""
    for pipeline, join in pipelines:
        _check_ids(pipeline)
        _check_calls(app, [*pipeline.steps, pipeline.on_error, pipeline.first_error])
        outer = join
        while outer is not None:
            cb = outer.callback
            _check_calls(app, [cb.call, *cb.next, cb.error])
            outer = cb.join
    tasks = [app._to_new_task(p.first, p.flow(join).wire()) for p, join in pipelines]
    for (pipeline, join), new in zip(pipelines, tasks, strict=True):
        _check_not_unique(pipeline, join, new)
    ids = app._store(tasks)
    if app.signals:
        for (p, _), new, stored in zip(pipelines, tasks, ids, strict=True):
            m = p.first
            if stored == m.id:  # not another task holding its unique key
                ref = TaskRef(m.id, m.task, new.queue, m.args, m.kwargs)
                app.signals.send(SIGNAL_ENQUEUED, ref)
    if app.immediate:
        app.run_pending()
    return {new.id: stored for new, stored in zip(tasks, ids, strict=True)}


def _check_calls(app: Scoter, calls: list[Call | None]) -> None:
    """Raise TypeError, at enqueue, for a later call its task cannot take (or an error
    handler, or theirs): each gets a value first (the previous result, the chord's results,
    the failure), then its own arguments."""
    for listed in calls:
        for call in [] if listed is None else [listed, *listed.handlers()]:
            task = app.tasks.get(call.task)
            if task is not None:
                task.check_call(call.task, (None, *call.args), call.kwargs)


def _check_not_unique(pipeline: Pipeline, join: ChordJoin | None, new: NewTask) -> None:
    """Refuse a unique call (`unique=True`, `unique_key=`) that starts a pipeline, has an
    error handler or is a chord's member: where a live task holds its key, nothing of the
    flow would be stored — its later steps, its handler, its chord's countdown — while the
    holder, a task of another flow or of none, carries none of them."""
    if new.unique_key is None or not (pipeline.steps or join or pipeline.handler_ids()):
        return
    where = "a chord's member" if join is not None else "the first step of a pipeline"
    raise ValueError(
        f"{pipeline.first.task!r} is unique (unique=True or unique_key=) and cannot be {where} "
        "or have an error handler: when a live task holds its key, the flow would not be "
        "stored; enqueue it alone, or give the flow a task that is not unique"
    )


def _check_ids(pipeline: Pipeline) -> None:
    """Refuse a pipeline whose step ids would not be valid ids: its own id is too long."""
    flow = pipeline.flow()
    for derived in (flow.step_id(len(pipeline.steps)), *pipeline.handler_ids()):
        if ID.fullmatch(derived) is None:
            raise ValueError(
                f"the id {pipeline.id!r} is too long for the ids of its steps ({derived!r}): "
                f"ids are {ID_RULE}; give its first message a shorter id"
            )


# -- running flows ---------------------------------------------------------------------------


def after_success(app: Scoter, flow: StepFlow, value: Any) -> Flow:
    """What the ack of a step that returned `value` hands on: the next step (the value first
    among its arguments), or at a chord member's end its countdown with the callback, and at a
    chord's callback the release of the chord's record."""
    follow: tuple[NewTask, ...] = ()
    join = None
    if flow.next:
        call = flow.next[0]
        step = flow.following()
        follow = (_new_task(app, flow.step_id(step.step), call, (value, *call.args), step),)
    elif flow.join is not None:
        j = flow.join
        result = app.encode_value(value, MEMBER, f"{j.chord}:{j.index}")
        cb = j.callback
        callback_flow = StepFlow(j.chord, 0, cb.next, cb.error, cb.join, (j.chord, j.size),
                                 cb.call.error)  # fmt: skip
        callback = _new_task(app, j.chord, cb.call, cb.call.args, callback_flow, check=False)
        join = Join(j.chord, j.index, j.size, result, callback)
    release = flow.gather[0] if flow.gather is not None else None
    return Flow(follow, join, release)


def gathered(app: Scoter, flow: StepFlow) -> list[Any]:
    """The results of a chord's members, in order: its callback's first argument."""
    assert flow.gather is not None
    chord_id, size = flow.gather
    info = app.storage.chord_info(chord_id)
    have = {} if info is None else info.results
    missing = [i for i in range(size) if i not in have]
    if missing:
        raise FlowError(
            f"chord {chord_id} holds the results of {size - len(missing)} of its {size} members "
            f"(missing: {missing[:5]}): its record was purged, or its callback already finished"
        )
    return [app.decode_value(have[i], MEMBER, f"{chord_id}:{i}") for i in range(size)]


def on_dead(
    app: Scoter,
    lease: Lease,
    flow: StepFlow | None,
    reason: str,
    error: str,
    exc: BaseException | None = None,
) -> list[NewTask]:
    """What the death of a flow step stores with it: its error handler (not for a revoked
    step), given the failure (a handler that has one of its own carries it as its flow: its
    own death stores that one, given the handler's failure), and for a chord member whose
    chord has a stand-in, the stand-in, whose value counts as the member's result. The
    failure is a TaskFailed; its `exception` is the exception the step raised, when this
    process caught it (a serializer that can carry it, such as pickle, passes it on)."""
    if flow is None:
        return []
    failure = TaskFailed(lease.id, reason, error[-ERROR_CHARS:])
    failure.exception = _portable(exc)
    tasks = []
    handler = flow.handler
    if handler is not None and reason != REVOKED:
        handler_id, call = handler
        own = None if call.error is None else StepFlow(handler_id, 0, error=call.error)
        tasks.append(_new_task(app, handler_id, call, (failure, *call.args), own))
    join = flow.join
    if join is not None and join.stand_in is not None:
        stand_in = StepFlow(lease.id, 0, join=join)
        call = Call(join.stand_in)
        tasks.append(_new_task(app, stand_in_id(lease.id), call, (failure,), stand_in))
    return tasks


def _portable(exc: BaseException | None) -> BaseException | None:
    """`exc` if pickle can carry it there and back, else None (a serializer that cannot
    carry it must not cost the flow its handler)."""
    if exc is None:
        return None
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return None
    return exc


def stand_in_id(task_id: str) -> str:
    """The id of the task that stands in for dead chord member `task_id` (a step's id with a
    suffix, cut to fit the id rule; the id is derived, so a second death stores no other)."""
    suffix = ".dead"
    return task_id[: 200 - len(suffix)] + suffix


def read(app: Scoter, lease: Lease) -> StepFlow | None:
    """The flow a claimed task's payload carries (None: none, or it cannot be read)."""
    try:
        wire = app.decode_claimed(lease).flow
        return None if wire is None else StepFlow.read(wire)
    except Exception:  # undecodable: it goes dead as such, with no handler
        return None


# -- inspection ------------------------------------------------------------------------------


def flow_of(app: Scoter, info: TaskInfo) -> StepFlow | None:
    """The flow a stored task's payload carries (None: none, or it cannot be read)."""
    lease = Lease("", info.id, info.name, info.queue, info.payload, 0.0, 0, 0, 0, 0, None,
                  priority=info.priority, max_crashes=info.max_crashes)  # fmt: skip
    return read(app, lease)


def _new_task(
    app: Scoter,
    task_id: str,
    call: Call,
    args: tuple[Any, ...],
    flow: StepFlow | None,
    *,
    check: bool = True,
) -> NewTask:
    wire = None if flow is None else flow.wire()
    expires = app._expiry_of_call(call.task)  # its task's `expires`, from now
    return app._new_task(
        task_id, call.task, args, call.kwargs, call.queue, call.priority, None, None, expires,
        flow=wire, check=check,
    )  # fmt: skip
