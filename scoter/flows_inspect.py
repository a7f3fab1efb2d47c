"""What `scoter show` says of a stored task's place in a pipeline or chord (scoter.flows)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scoter.flows import flow_of
from scoter.flows_wire import ChordJoin

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.storage.base import TaskInfo


def describe(app: Scoter, info: TaskInfo) -> list[str]:
    """What `scoter show` says of a stored task's place in a flow: none for other tasks."""
    flow = flow_of(app, info)
    if flow is None:
        return []
    lines = []
    if flow.step or flow.next:
        lines.append(f"step {flow.step + 1} of {flow.step + 1 + len(flow.next)} of pipeline "
                     f"{flow.id}")  # fmt: skip
    if flow.gather is not None:
        lines.append(f"callback of chord {flow.id}: its first argument is the results of the "
                     f"chord's {flow.gather[1]} members, in order")  # fmt: skip
    if flow.next:
        call = flow.next[0]
        lines.append(f"next: {call.task} ({flow.step_id(flow.step + 1)}), stored with this "
                     "step's ack")  # fmt: skip
        lines.extend(f"then: {c.task}" for c in flow.next[1:])
    if flow.join is not None:
        lines.extend(describe_member(app, flow.join, last=not flow.next))
    if flow.handler is not None:
        handler_id, handler = flow.handler
        lines.append(f"on error: {handler.task} ({handler_id}), stored with this step's death")
        lines.extend(f"if that fails: {h.task}" for h in handler.handlers())
    return lines


def describe_member(app: Scoter, join: ChordJoin, *, last: bool) -> list[str]:
    """A chord member's part: the chord's countdown and its callback."""
    what = "its ack counts" if last else "its pipeline's last step counts"
    lines = [f"member {join.index + 1} of chord {join.chord}: {what} the chord down"]
    lines += describe_chord(app, join.chord, join.size)
    lines.append(f"the chord's callback: {join.callback.call.task} ({join.chord}), stored with "
                 "the ack of its last member")  # fmt: skip
    return lines


def describe_chord(app: Scoter, chord_id: str, size: int | None = None) -> list[str]:
    """A chord's countdown as stored: how many members finished."""
    info = app.storage.chord_info(chord_id)
    if info is None:
        done = "no member has finished (or its callback has)"
        return [f"chord {chord_id}: {done}" if size is None else f"of {size} members, {done}"]
    return [f"chord {chord_id}: {len(info.results)} of {info.size} members finished"]
