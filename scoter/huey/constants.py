"""Huey's constants (`huey.constants`)."""

WORKER_THREAD = "thread"
WORKER_GREENLET = "greenlet"
WORKER_PROCESS = "process"
WORKER_TYPES = (WORKER_THREAD, WORKER_GREENLET, WORKER_PROCESS)


class EmptyData:
    """Stands for "no value stored" where None is a value."""
