"""What a pipeline or chord step stores with its ack (see `Storage.ack_many_and_claim`), and
a chord's countdown as read back: re-exported by `scoter.storage.base`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scoter.storage.base import Ack, NewTask


@dataclass(frozen=True, slots=True)
class Join:
    """A chord member's part of its ack: count member `index` of chord `chord` (of `size`
    members) as finished, keeping `result`; the ack that finishes the last member stores
    `callback`."""

    chord: str
    index: int
    size: int
    result: bytes
    """The member's result as the chord keeps it (sealed for the chord and index)."""
    callback: NewTask

    def __reduce__(self) -> tuple[type[Join], tuple[object, ...]]:
        return Join, (self.chord, self.index, self.size, self.result, self.callback)


@dataclass(frozen=True, slots=True)
class Flow:
    """What a pipeline or chord step stores with its ack, in the same atomic step, and only
    when the ack lands (its token holds the lease): the hand-off to what comes next."""

    follow: tuple[NewTask, ...] = ()
    """Tasks to store: the next step of a pipeline. Stored as `enqueue(restart_finished=False)`
    stores them: an id already stored, live or finished, is left as it is, so that no step is
    stored twice."""
    join: Join | None = None
    """Count this chord member down; the last one stores the chord's callback."""
    release: str | None = None
    """A chord whose record (`chord_info`) is deleted: its callback's own ack."""

    def __reduce__(self) -> tuple[type[Flow], tuple[object, ...]]:
        return Flow, (self.follow, self.join, self.release)


@dataclass(frozen=True, slots=True)
class ChordInfo:
    """A chord's countdown: its size and the results of the members that finished."""

    id: str
    size: int
    results: dict[int, bytes]
    """Member index -> the member's result, for every member that finished."""


def with_flows(acks: Sequence[Ack]) -> bool:
    """Whether any of `acks` hands a flow on. Every group of acks asks, so a plain loop: a
    third of the cost of `any()` over a generator."""
    for a in acks:  # noqa: SIM110
        if a.flow is not None:
            return True
    return False
