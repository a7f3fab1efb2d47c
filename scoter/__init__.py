"""scoter: a small, fast Python task queue that never loses a task."""

from scoter.app import Scoter
from scoter.consumer import Consumer
from scoter.context import TaskContext, current_context
from scoter.exceptions import (
    ConfigurationError,
    DecodeError,
    EnqueueError,
    Interrupt,
    LeaseLost,
    RateLimitExceeded,
    ResultMissing,
    ResultTimeout,
    SchemaVersionError,
    ScoterError,
    TaskFailed,
    TaskLockedException,
    TooLarge,
    UnknownTask,
)
from scoter.flows import Chord, Group, Pipeline, chord, group
from scoter.periodic import crontab, every
from scoter.result import ChordResult, Result, ResultGroup
from scoter.retry import RetryPolicy
from scoter.signals import (
    SIGNAL_COMPLETE,
    SIGNAL_DEAD,
    SIGNAL_ENQUEUED,
    SIGNAL_ERROR,
    SIGNAL_EXECUTING,
    SIGNAL_EXPIRED,
    SIGNAL_INTERRUPTED,
    SIGNAL_LEASE_LOST,
    SIGNAL_RESCUED,
    SIGNAL_RETRYING,
    SIGNAL_REVOKED,
    TaskRef,
)
from scoter.states import State
from scoter.task import AsyncTask, Message, Task

__version__ = "0.1.0"

__all__ = [
    # signals
    "SIGNAL_COMPLETE",
    "SIGNAL_DEAD",
    "SIGNAL_ENQUEUED",
    "SIGNAL_ERROR",
    "SIGNAL_EXECUTING",
    "SIGNAL_EXPIRED",
    "SIGNAL_INTERRUPTED",
    "SIGNAL_LEASE_LOST",
    "SIGNAL_RESCUED",
    "SIGNAL_RETRYING",
    "SIGNAL_REVOKED",
    # the app and its tasks (and, interleaved in sorted order, errors)
    "AsyncTask",
    "Chord",
    "ChordResult",
    "ConfigurationError",
    "Consumer",
    "DecodeError",
    "EnqueueError",
    "Group",
    "Interrupt",
    "LeaseLost",
    "Message",
    "Pipeline",
    "RateLimitExceeded",
    "Result",
    "ResultGroup",
    "ResultMissing",
    "ResultTimeout",
    "RetryPolicy",
    "SchemaVersionError",
    "Scoter",
    "ScoterError",
    "State",
    "Task",
    "TaskContext",
    "TaskFailed",
    "TaskLockedException",
    "TaskRef",
    "TooLarge",
    "UnknownTask",
    "__version__",
    "chord",
    "crontab",
    "current_context",
    "every",
    "group",
]
