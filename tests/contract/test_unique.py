"""Unique keys (DESIGN §5): at most one live task per key, atomic under concurrent enqueues;
the key is free again once its task is done, dead or purged."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from scoter.states import State
from scoter.storage.base import NewTask, Storage

from .conftest import Backend
from .coordination_helpers import race_for_key
from .helpers import QUEUE, TRACEBACK, claim_one, new_task, race


def keyed(task_id: str, key: str | None = "k", **fields: object) -> NewTask:
    return replace(new_task(task_id, name="app.unique", **fields), unique_key=key)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _coordinated(storage: Storage) -> None:
    if not storage.coordination:
        pytest.skip("a Redis Cluster keeps no unique keys, locks or limits yet")


def test_a_live_key_returns_its_holder(storage: Storage) -> None:
    assert storage.enqueue_unique([keyed("first")]) == ["first"]
    assert storage.enqueue_unique([keyed("second"), keyed("other", "k2")]) == ["first", "other"]
    assert storage.get("second") is None
    assert storage.counts() == {(QUEUE, State.QUEUED): 2}


def test_tasks_of_one_call_sharing_a_key_store_the_first(storage: Storage) -> None:
    ids = storage.enqueue_unique([keyed("a"), keyed("b"), keyed("plain", None), keyed("c")])
    assert ids == ["a", "a", "plain", "a"]
    assert storage.counts() == {(QUEUE, State.QUEUED): 2}


@pytest.mark.parametrize("state", [State.SCHEDULED, State.RUNNING])
def test_scheduled_and_running_tasks_hold_their_key(storage: Storage, state: State) -> None:
    eta = time.time() + 3600 if state is State.SCHEDULED else None
    assert storage.enqueue_unique([keyed("first", eta=eta)]) == ["first"]
    if state is State.RUNNING:
        claim_one(storage)
    assert storage.enqueue_unique([keyed("second")]) == ["first"]


@pytest.mark.parametrize("ending", ["ack", "dead", "purge"])
def test_the_key_is_free_once_its_task_is_done_dead_or_purged(
    storage: Storage, ending: str
) -> None:
    assert storage.enqueue_unique([keyed("first")]) == ["first"]
    if ending == "purge":
        assert storage.purge(State.QUEUED, ["first"]) == 1
    else:
        lease = claim_one(storage)
        if ending == "ack":
            assert storage.ack(lease.token, None, None)
        else:
            assert storage.dead(lease.token, "error", TRACEBACK)
    assert storage.enqueue_unique([keyed("second")]) == ["second"]
    info = storage.get("second")
    assert info is not None and info.state is State.QUEUED


def test_an_id_already_stored_is_left_as_it_is(storage: Storage) -> None:
    assert storage.enqueue_unique([keyed("same")]) == ["same"]
    assert storage.enqueue_unique([keyed("same")], restart_finished=False) == ["same"]
    lease = claim_one(storage)
    assert storage.ack(lease.token, b"r", None)
    assert storage.enqueue_unique([keyed("same")], restart_finished=False) == ["same"]
    info = storage.get("same")
    assert info is not None and info.state is State.DONE, "not started over"
    assert storage.enqueue_unique([keyed("same")]) == ["same"]
    info = storage.get("same")
    assert info is not None and info.state is State.QUEUED, "started over, holding its key"
    assert storage.enqueue_unique([keyed("another")]) == ["same"]


def test_a_plain_enqueue_ignores_keys(storage: Storage) -> None:
    assert storage.enqueue_unique([keyed("first")]) == ["first"]
    assert storage.enqueue([keyed("second")]) == 1
    assert storage.counts() == {(QUEUE, State.QUEUED): 2}


def test_processes_enqueueing_one_key_make_one_task(
    backend: Backend, location: str, storage: Storage
) -> None:
    if not backend.shared:
        pytest.skip("this backend's tasks live in one process")
    reports = race(race_for_key, 5, backend.open, location)
    assert [error for _, error in reports if error] == []
    returned = {task_id for ids, _ in reports for task_id in ids}
    assert len(returned) == 1, returned
    assert storage.counts() == {(QUEUE, State.QUEUED): 1}
    assert storage.get(returned.pop()) is not None
