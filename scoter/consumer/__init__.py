"""The consumer: supervisor, fetch loop, executors and background services."""

from scoter.consumer.supervisor import EXIT_OK, EXIT_RESTART, Consumer

__all__ = ["EXIT_OK", "EXIT_RESTART", "Consumer"]
