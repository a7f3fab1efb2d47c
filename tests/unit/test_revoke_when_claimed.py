"""`Scoter.revoke_when_claimed`: a task revoked by id as Huey revokes it stays stored as it is
and ends revoked when claimed (once, until a time, or until restored)."""

from __future__ import annotations

import time

import pytest

from scoter import Scoter, State
from scoter.revocation import revoked_now
from scoter.storage.base import Lease, Storage

LEASE_S = 30.0


@pytest.fixture
def app(storage: Storage) -> Scoter:
    app = Scoter("unit", storage)

    @app.task
    def noop() -> None: ...

    return app


def claim(app: Scoter) -> Lease:
    [lease] = app.storage.claim(["default"], 1, LEASE_S, "c1")
    return lease


def test_the_task_stays_queued_and_is_revoked_when_claimed(app: Scoter) -> None:
    result = app.enqueue("noop")
    app.revoke_when_claimed(result.id)
    assert app.storage.get(result.id).state is State.QUEUED  # type: ignore[union-attr]
    assert app.is_revoked(result.id)
    assert revoked_now(app.storage, claim(app), LEASE_S) == "revoked by id when claimed"
    assert app.is_revoked(result.id)  # until restored


def test_revoke_once_is_spent_by_one_claim(app: Scoter) -> None:
    result = app.enqueue("noop")
    app.revoke_when_claimed(result.id, revoke_once=True)
    lease = claim(app)
    assert revoked_now(app.storage, lease, LEASE_S) is not None
    assert revoked_now(app.storage, lease, LEASE_S) is None
    assert not app.is_revoked(result.id)


def test_revoke_until_and_restore(app: Scoter) -> None:
    result = app.enqueue("noop")
    app.revoke_when_claimed(result.id, revoke_until=60)
    assert app.is_revoked(result.id)
    assert not app.is_revoked(result.id, time.time() + 61)
    assert app.restore_by_id(result.id)
    assert not app.is_revoked(result.id)
    assert revoked_now(app.storage, claim(app), LEASE_S) is None
