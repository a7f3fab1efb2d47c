"""What a stored step of a flow carries in its payload (scoter.flows): the calls still to come,
each with its own error handler, the pipeline's error handler, the chord it ends in. Signed
with the rest of the payload; read back by the consumer that claims the step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scoter.exceptions import DecodeError

ERROR_SUFFIX = ".error"
"""What an error handler's id adds to the id it derives from."""


@dataclass(frozen=True, slots=True)
class Call:
    """A call of a flow after its first step: a task's name, arguments and options, and its
    own error handler (over the pipeline's); an error handler's own is stored when the
    handler ends dead, given the handler's failure."""

    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    error: Call | None = None

    def wire(self) -> list[Any]:
        wire = [self.task, list(self.args), self.kwargs, self.queue, self.priority]
        return wire if self.error is None else [*wire, self.error.wire()]

    @classmethod
    def read(cls, value: Any) -> Call:
        ok = isinstance(value, list) and len(value) in (5, 6) and isinstance(value[0], str)
        if not ok or not isinstance(value[1], list) or not isinstance(value[2], dict):
            raise DecodeError(f"a flow's call is malformed: {value!r:.80}")
        error = Call.read(value[5]) if len(value) == 6 else None
        return cls(value[0], tuple(value[1]), value[2], value[3], value[4], error)

    def handlers(self) -> list[Call]:
        """Its error handler, that one's, and so on (each runs when the one before dies)."""
        chain: list[Call] = []
        handler = self.error
        while handler is not None:
            chain.append(handler)
            handler = handler.error
        return chain


@dataclass(frozen=True, slots=True)
class Callback:
    """A chord's callback as its members carry it: its first call (with its own error
    handler), what follows it, and their error handler."""

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
    """The flow's id: its first step's (a chord callback's: the chord's; an error handler's:
    its own)."""
    step: int
    next: tuple[Call, ...] = ()
    error: Call | None = None
    """The error handler of every step of the flow that has none of its own."""
    join: ChordJoin | None = None
    """Set on a chord member's steps: the last one counts the chord down."""
    gather: tuple[str, int] | None = None
    """Set on a chord's callback: (chord, size), whose member results come first."""
    own: Call | None = None
    """This step's own error handler, over `error`."""

    def step_id(self, step: int) -> str:
        return self.id if step == 0 else f"{self.id}.{step}"

    @property
    def error_id(self) -> str:
        """The id of the flow's error handler: one per flow, however many steps die."""
        return self.id + ERROR_SUFFIX

    def own_error_id(self, step: int) -> str:
        """The id of step `step`'s own error handler: one per step."""
        return f"{self.id}.{step}{ERROR_SUFFIX}"

    @property
    def handler(self) -> tuple[str, Call] | None:
        """This step's error handler and its id: its own, else the flow's (None: none)."""
        if self.own is not None:
            return self.own_error_id(self.step), self.own
        return None if self.error is None else (self.error_id, self.error)

    def following(self) -> StepFlow:
        """The flow of the next step."""
        call = self.next[0]
        return StepFlow(self.id, self.step + 1, self.next[1:], self.error, self.join,
                        own=call.error)  # fmt: skip

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
        if self.own is not None:
            wire["own"] = self.own.wire()
        return wire

    @classmethod
    def read(cls, wire: Any) -> StepFlow:
        """The flow of a decoded payload; DecodeError when it is malformed."""
        try:
            flow_id, step = wire["id"], wire["step"]
            if not isinstance(flow_id, str) or type(step) is not int:
                raise TypeError("id and step")
            join = wire.get("join")
            gather = wire.get("gather")
            return cls(
                flow_id, step, tuple(Call.read(c) for c in wire.get("next", ())),
                _call(wire.get("error")),
                None if join is None else ChordJoin.read(join),
                None if gather is None else (str(gather[0]), int(gather[1])),
                _call(wire.get("own")),
            )  # fmt: skip
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"the payload's flow is malformed: {exc!r}") from exc


def _call(wire: Any) -> Call | None:
    return None if wire is None else Call.read(wire)
