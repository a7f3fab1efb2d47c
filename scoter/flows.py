"""Pipelines, groups and chords, with Huey's names: `a.s(1, 2).then(b, 3).error(h)`,
`group([...])`, `group([...]).then(callback)` (a chord), `chord(members, callback)`.

A flow is stored one step at a time. Each step's payload carries what comes after it (its
`StepFlow`, signed with the rest of the payload): the calls still to come, the error handler,
the chord it ends in. When a step succeeds, the consumer builds the next step — the step's
return value first among its arguments — and hands it to the storage with the ack
(`storage.base.Flow`), which stores both in one atomic step, only if the ack lands: a crash
between them cannot lose or repeat the hand-off, and a stale attempt (its lease lost) hands
nothing on. Step ids derive from the flow's id — `<id>`, `<id>.1`, `<id>.2`, … and
`<id>.error` — so no step can be stored twice. A chord's members each count it down with
their ack; the one that completes the count stores the callback (whose id is the chord's),
which reads the members' results, in order, from the chord's record.
See docs/coordination-flows.md.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scoter.exceptions import DecodeError, ScoterError, TaskFailed
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


# -- what a flow is made of ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """A call of a flow after its first step: a task's name, arguments and options."""

    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None

    def wire(self) -> list[Any]:
        return [self.task, list(self.args), self.kwargs, self.queue, self.priority]

    @classmethod
    def read(cls, value: Any) -> Call:
        ok = isinstance(value, list) and len(value) == 5 and isinstance(value[0], str)
        if not ok or not isinstance(value[1], list) or not isinstance(value[2], dict):
            raise DecodeError(f"a flow's call is malformed: {value!r:.80}")
        return cls(value[0], tuple(value[1]), value[2], value[3], value[4])


def call_of(task: Task[Any, Any] | Message, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
    """The Call of `.then(task, *args, **kwargs)` or `.error(...)`: a task with arguments, or
    a message (`task.s(...)`) alone."""
    if isinstance(task, Message):
        if args or kwargs:
            raise TypeError("give .then() a task and its arguments, or a message alone")
        return Call(task.task, task.args, task.kwargs, task.queue, task.priority)
    if not isinstance(task, Task):
        raise TypeError(
            f"expected a task (a function decorated with @app.task) or task.s(...), not {task!r}"
        )
    return Call(task.name, args, kwargs)


@dataclass(frozen=True, slots=True)
class Callback:
    """A chord's callback as its members carry it: its first call, and what follows it."""

    call: Call
    next: tuple[Call, ...] = ()
    error: Call | None = None
    join: ChordJoin | None = None
    """A nested chord's callback: its last step counts the chord it is a member of down."""

    def wire(self) -> list[Any]:
        error = None if self.error is None else self.error.wire()
        wire = [self.call.wire(), [c.wire() for c in self.next], error]
        return wire if self.join is None else [*wire, self.join.wire()]

    @classmethod
    def read(cls, value: Any) -> Callback:
        ok = isinstance(value, list) and len(value) in (3, 4) and isinstance(value[1], list)
        if not ok:
            raise DecodeError(f"a chord's callback is malformed: {value!r:.80}")
        error = None if value[2] is None else Call.read(value[2])
        join = ChordJoin.read(value[3]) if len(value) == 4 else None
        return cls(Call.read(value[0]), tuple(Call.read(c) for c in value[1]), error, join)


@dataclass(frozen=True, slots=True)
class ChordJoin:
    """A chord member's last step counts chord `chord` down as member `index` of `size`."""

    chord: str
    index: int
    size: int
    callback: Callback
    stand_in: str | None = None
    """The task that stands in for a member that ends dead: stored with its death, given the
    failure, its value counts as the member's result (so the callback runs). None: the chord
    waits for the member (retried by the operator)."""

    def wire(self) -> list[Any]:
        wire = [self.chord, self.index, self.size, self.callback.wire()]
        return wire if self.stand_in is None else [*wire, self.stand_in]

    @classmethod
    def read(cls, value: Any) -> ChordJoin:
        if not isinstance(value, list) or len(value) not in (4, 5):
            raise DecodeError(f"a chord member's join is malformed: {value!r:.80}")
        stand_in = None if len(value) == 4 else str(value[4])
        return cls(str(value[0]), int(value[1]), int(value[2]), Callback.read(value[3]), stand_in)


@dataclass(frozen=True, slots=True)
class StepFlow:
    """What a stored step of a flow carries: where it is, and what comes after it."""

    id: str
    """The flow's id: its first step's (a chord callback's: the chord's)."""
    step: int
    next: tuple[Call, ...] = ()
    error: Call | None = None
    join: ChordJoin | None = None
    """Set on a chord member's steps: the last one counts the chord down."""
    gather: tuple[str, int] | None = None
    """Set on a chord's callback: (chord, size), whose member results come first."""

    def step_id(self, step: int) -> str:
        return self.id if step == 0 else f"{self.id}.{step}"

    @property
    def error_id(self) -> str:
        return f"{self.id}.error"

    def following(self) -> StepFlow:
        """The flow of the next step."""
        return StepFlow(self.id, self.step + 1, self.next[1:], self.error, self.join)

    def wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": self.id, "step": self.step}
        if self.next:
            wire["next"] = [c.wire() for c in self.next]
        if self.error is not None:
            wire["error"] = self.error.wire()
        if self.join is not None:
            wire["join"] = self.join.wire()
        if self.gather is not None:
            wire["gather"] = list(self.gather)
        return wire

    @classmethod
    def read(cls, wire: Any) -> StepFlow:
        """The flow of a decoded payload; DecodeError when it is malformed."""
        try:
            flow_id, step = wire["id"], wire["step"]
            if not isinstance(flow_id, str) or type(step) is not int:
                raise TypeError("id and step")
            error = wire.get("error")
            join = wire.get("join")
            gather = wire.get("gather")
            return cls(
                flow_id, step, tuple(Call.read(c) for c in wire.get("next", ())),
                None if error is None else Call.read(error),
                None if join is None else ChordJoin.read(join),
                None if gather is None else (str(gather[0]), int(gather[1])),
            )  # fmt: skip
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"the payload's flow is malformed: {exc!r}") from exc


# -- building flows --------------------------------------------------------------------------


class Pipeline:
    """Steps that run one after another: each is stored when the one before it succeeds and
    gets that one's return value as its first argument. Built by `task.s(...).then(...)`."""

    __slots__ = ("first", "on_error", "steps")

    def __init__(
        self, first: Message, steps: tuple[Call, ...] = (), on_error: Call | None = None
    ) -> None:
        self.first = first
        self.steps = steps
        self.on_error = on_error

    def __repr__(self) -> str:
        names = " -> ".join([self.first.task, *(c.task for c in self.steps)])
        return f"<Pipeline {self.id}: {names}>"

    @property
    def id(self) -> str:
        """The pipeline's id: its first step's; step k's is `<id>.k`."""
        return self.first.id

    def then(self, task: Task[Any, Any] | Message, *args: Any, **kwargs: Any) -> Pipeline:
        """This pipeline with one more step: `task(previous result, *args, **kwargs)`."""
        return Pipeline(self.first, (*self.steps, call_of(task, args, kwargs)), self.on_error)

    def error(self, task: Task[Any, Any] | Message, *args: Any, **kwargs: Any) -> Pipeline:
        """This pipeline with an error handler: when a step ends dead, `task(failure, *args,
        **kwargs)` is stored with its death, `failure` a TaskFailed naming the step."""
        return Pipeline(self.first, self.steps, call_of(task, args, kwargs))

    def flow(self, join: ChordJoin | None = None) -> StepFlow:
        """The flow its first step carries."""
        return StepFlow(self.id, 0, self.steps, self.on_error, join)

    def results(self, app: Scoter, after: tuple[Result[Any], ...] = ()) -> list[Result[Any]]:
        """A Result per step, each waiting on the one before."""
        flow = self.flow()
        results: list[Result[Any]] = [Result(app, self.id, after)]
        for step in range(1, len(self.steps) + 1):
            results.append(Result(app, flow.step_id(step), (results[-1],)))
        return results


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

    def error(self, task: Task[Any, Any] | Message, *args: Any, **kwargs: Any) -> Group:
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

    def then(self, task: Task[Any, Any] | Message, *args: Any, **kwargs: Any) -> Chord:
        """Chain a step after the callback, as `Pipeline.then`."""
        return Chord(self.group, self.callback.then(task, *args, **kwargs), self.stand_in)

    def error(self, task: Task[Any, Any] | Message, *args: Any, **kwargs: Any) -> Chord:
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
    return Pipeline(member.first, member.steps, handler)


# -- enqueueing ------------------------------------------------------------------------------


def enqueue(app: Scoter, flow: Pipeline | Group | Chord) -> ResultGroup | ChordResult:
    """Store the first step of each pipeline in `flow` (in nested chords too), in one storage
    call."""
    from scoter.result import ChordResult

    if isinstance(flow, Pipeline):
        _store(app, [(flow, None)])
        return ResultGroup(flow.results(app))
    if isinstance(flow, Group):
        _store(app, [p for m in flow.members for p in _planned(m, None)])
        return ResultGroup([_end(app, m) for m in flow.members])
    _store(app, _planned(flow, None))
    ends = ResultGroup([_end(app, m) for m in flow.group.members])
    steps = flow.callback.results(app, tuple(ends))
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
        return [(Pipeline(first, cb.steps, cb.on_error), outer)]
    first = cb.first
    call = Call(first.task, first.args, first.kwargs, first.queue, first.priority)
    callback = Callback(call, cb.steps, cb.on_error, outer)
    size = len(members)
    return [
        planned
        for i, m in enumerate(members)
        for planned in _planned(m, ChordJoin(member.id, i, size, callback, member.stand_in))
    ]


def _end(app: Scoter, member: Pipeline | Chord) -> Result[Any]:
    """The Result of a member's last step: a pipeline's, or a chord's callback's."""
    if isinstance(member, Pipeline):
        return member.results(app)[-1]
    ends = tuple(_end(app, m) for m in member.group.members)
    return member.callback.results(app, ends)[-1]


def _store(app: Scoter, pipelines: list[tuple[Pipeline, ChordJoin | None]]) -> None:
    for pipeline, join in pipelines:
        _check_ids(pipeline)
        _check_calls(app, pipeline.steps, pipeline.on_error)
        outer = join
        while outer is not None:
            cb = outer.callback
            _check_calls(app, (cb.call, *cb.next), cb.error)
            outer = cb.join
    tasks = [app._to_new_task(p.first, p.flow(join).wire()) for p, join in pipelines]
    app._store(tasks)
    if app.signals:
        for (p, _), new in zip(pipelines, tasks, strict=True):
            m = p.first
            app.signals.send(SIGNAL_ENQUEUED, TaskRef(m.id, m.task, new.queue, m.args, m.kwargs))
    if app.immediate:
        app.run_pending()


def _check_calls(app: Scoter, calls: tuple[Call, ...], error: Call | None) -> None:
    """Raise TypeError, at enqueue, for a later call its task cannot take: each gets a value
    first (the previous result, the chord's results, the failure), then its own arguments."""
    for call in (*calls, *(() if error is None else (error,))):
        task = app.tasks.get(call.task)
        if task is not None:
            task.check_call(call.task, (None, *call.args), call.kwargs)


def _check_ids(pipeline: Pipeline) -> None:
    """Refuse a pipeline whose step ids would not be valid ids: its own id is too long."""
    flow = pipeline.flow()
    for derived in (flow.step_id(len(pipeline.steps)), flow.error_id):
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
        callback_flow = StepFlow(j.chord, 0, cb.next, cb.error, cb.join, (j.chord, j.size))
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
    step), given the failure, and for a chord member whose chord has a stand-in, the stand-in,
    whose value counts as the member's result. The failure is a TaskFailed; its `exception`
    is the exception the step raised, when this process caught it (a serializer that can
    carry it, such as pickle, passes it on)."""
    if flow is None:
        return []
    failure = TaskFailed(lease.id, reason, error[-ERROR_CHARS:])
    failure.exception = _portable(exc)
    tasks = []
    if flow.error is not None and reason != REVOKED:
        call = flow.error
        tasks.append(_new_task(app, flow.error_id, call, (failure, *call.args), None))
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
