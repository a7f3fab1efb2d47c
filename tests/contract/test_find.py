"""find_tasks: the operator's search by task name, on every backend."""

from __future__ import annotations

import time

from scoter.states import State
from scoter.storage.base import Storage

from .helpers import enqueue, in_state, one_of_each


def _ids(storage: Storage, name: str, state: State | None = None, limit: int = 100) -> list[str]:
    return [t.id for t in storage.find_tasks(name, state, limit)]


def test_find_matches_part_of_the_name_newest_first(storage: Storage) -> None:
    enqueue(storage, "a1", name="billing.send_invoice")
    enqueue(storage, "b1", name="mail.send_email")
    enqueue(storage, "a2", name="billing.send_invoice", queue="other")
    enqueue(storage, "c1", name="billing.refund")

    assert _ids(storage, "send_invoice") == ["a2", "a1"]
    assert _ids(storage, "send_") == ["a2", "b1", "a1"]
    assert _ids(storage, "billing.") == ["c1", "a2", "a1"]
    assert _ids(storage, "Send") == []  # case-sensitive
    assert _ids(storage, "") == ["c1", "a2", "b1", "a1"]


def test_find_searches_every_state_or_one(storage: Storage) -> None:
    ids = one_of_each(storage)  # each named app.work, enqueued in the order below
    newest_first = ["queued", "scheduled", "dead", "done", "running"]

    assert _ids(storage, "work") == newest_first
    for state, task_id in zip(State, ids, strict=True):
        assert _ids(storage, "work", state) == [task_id]
    assert _ids(storage, "other") == []
    found = storage.find_tasks("work", State.DEAD)[0]
    assert found.state is State.DEAD and found.reason == "error" and found.error


def test_find_keeps_to_the_limit(storage: Storage) -> None:
    in_state(storage, "d", State.DONE, name="app.many")
    for i in range(7):
        enqueue(storage, f"t{i}", name="app.many")

    assert _ids(storage, "many", limit=3) == ["t6", "t5", "t4"]
    assert _ids(storage, "many", State.DONE, limit=3) == ["d"]
    assert _ids(storage, "many", State.QUEUED, limit=2) == ["t6", "t5"]
    assert _ids(storage, "many", limit=0) == []


def test_find_reads_wildcards_as_plain_text(storage: Storage) -> None:
    enqueue(storage, "pct", name="app.100%_done")
    enqueue(storage, "plain", name="app.100x_done")
    enqueue(storage, "lua", name="app.[a-z]+.*")

    assert _ids(storage, "%_") == ["pct"]
    assert _ids(storage, "[a-z]+.") == ["lua"]
    assert _ids(storage, "100") == ["plain", "pct"]


def test_an_id_enqueued_again_counts_from_then(storage: Storage) -> None:
    in_state(storage, "first", State.DONE)
    enqueue(storage, "second")
    time.sleep(0.002)
    assert enqueue(storage, "first") == 1  # done: starts over as the newest

    assert _ids(storage, "work") == ["first", "second"]
