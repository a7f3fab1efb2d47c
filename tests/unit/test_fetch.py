"""How the consumer's fetch loop claims: once a claim finds nothing, it waits for work first."""

from __future__ import annotations

from typing import Any

from scoter import Scoter
from scoter.consumer.supervisor import Consumer


def test_after_an_empty_claim_the_next_poll_waits_before_claiming() -> None:
    app = Scoter("t", "memory://")
    consumer = Consumer(app, workers=2, poll=0.01)
    calls: list[str] = []

    def claim(*args: Any) -> list[Any]:
        calls.append("claim")
        return []

    def wait_and_claim(*args: Any) -> list[Any]:
        calls.append("wait_and_claim")
        return []

    app.storage.claim = claim  # type: ignore[method-assign]
    app.storage.wait_and_claim = wait_and_claim  # type: ignore[method-assign]
    consumer._fetch()
    consumer._fetch()

    assert calls == ["claim", "wait_and_claim", "wait_and_claim"]
