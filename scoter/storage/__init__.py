"""Storage backends behind one contract (`Storage`)."""

from scoter.storage.base import Ack, Lease, NewTask, Rescued, Storage, TaskInfo
from scoter.storage.memory import MemoryStorage
from scoter.storage.sqlite import SQLiteStorage

__all__ = [
    "Ack", "Lease", "MemoryStorage", "NewTask", "Rescued", "SQLiteStorage", "Storage", "TaskInfo",
]  # fmt: skip
