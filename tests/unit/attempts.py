"""A consumer with one worker and no threads: runs one leased attempt in the calling thread
and settles it through the policy, as the settler would."""

from __future__ import annotations

from scoter import Scoter
from scoter.consumer import attempt
from scoter.consumer.policy import Policy
from scoter.context import TaskContext
from scoter.storage.base import Lease

LEASE_S = 30.0


class InlineConsumer:
    def __init__(self, app: Scoter, consumer_id: str) -> None:
        self.app = app
        self.policy = Policy(app, consumer_id)

    @property
    def stale_writes(self) -> int:
        return self.policy.stale_writes

    def context(self, lease: Lease) -> TaskContext:
        return attempt.new_context(self.app, lease, LEASE_S)

    def execute(self, lease: Lease, ctx: TaskContext | None = None) -> None:
        ctx = ctx or self.context(lease)
        self.policy.apply(ctx, attempt.execute(self.app, ctx))

    def interrupt(self, ctx: TaskContext, reason: str) -> bool:
        """Release the attempt; whether the release landed."""
        return self.policy.release(ctx, reason)
