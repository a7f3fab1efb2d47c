"""The tests of Huey's own suite that fail on scoter's drop-in, each with its reason: a row of
the table "Where scoter differs on purpose" in docs/from-huey.md (quoted by its first words),
or what is not mapped. tests/integration/test_huey_suite.py keeps this list exact."""

SUITE_VERSION = "3.5"
"""The huey release whose suite this list was made from."""

SCHEDULED = "row 'schedule(delay=...) puts the task on the queue': scoter schedules it at once"
STORAGE = "row 'huey.storage is Huey's storage object': uses the storage object's own API"
PLACE = "row 'a retried task goes to the back of the queue': scoter keeps its place"
EXPIRES = "row 'an expires already passed': scoter refuses it at enqueue (ValueError)"
ON_ERROR = "row 'on_error runs after each failed attempt': scoter runs it once, at the death"
REVOCATION_KEYS = "row 'a revocation is a key of the result store' (result_count)"

DIFFERS: dict[str, str] = {
    "test_api::TestChordPrimitive::test_chord_bookkeeping_cleared":
        "row 'a chord's bookkeeping is counters in the storage' (reads storage._counters)",
    "test_api::TestChordPrimitive::test_chord_error": PLACE,
    "test_api::TestChordPrimitive::test_chord_error_cb": PLACE,
    "test_api::TestChordPrimitive::test_chord_member_retry_then_success": PLACE,
    "test_api::TestChordPrimitive::test_chord_expired_member": EXPIRES,
    "test_api::TestChordPrimitive::test_chord_scheduling": SCHEDULED,
    "test_api::TestDecorators::test_task_id": SCHEDULED,
    "test_api::TestQueue::test_blocking_result_no_sentinel_leak":
        "row 'huey.storage.wait_result waits for a result': the test patches it",
    "test_api::TestQueue::test_pending_scheduled_unregistered": SCHEDULED,
    "test_api::TestQueue::test_read_schedule": SCHEDULED,
    "test_api::TestQueue::test_reschedule": SCHEDULED,
    "test_api::TestQueue::test_result_store":
        "row 'a task returning None stores nothing': scoter keeps the finished task",
    "test_api::TestQueue::test_retry_backoff": STORAGE + " (flush_schedule)",
    "test_api::TestQueue::test_retrytask_eta_delay":
        "row 'RetryTask(eta=...) stores that eta to the microsecond'",
    "test_api::TestQueue::test_revoke_task_instance_persistent": REVOCATION_KEYS,
    "test_api::TestQueue::test_schedule_s": SCHEDULED,
    "test_api::TestQueue::test_scheduling": SCHEDULED,
    "test_api::TestQueue::test_scheduling_expires": EXPIRES,
    "test_api::TestRateLimit::test_execution": STORAGE + " (flush_schedule)",
    "test_api::TestRateLimit::test_task_with_retries": STORAGE + " (flush_schedule)",
    "test_api::TestStorageWrappers::test_storage_wrappers": SCHEDULED,
    "test_api::TestTaskChaining::test_error_callback_retries": ON_ERROR,
    "test_api::TestTaskChaining::test_pipeline_error_retries_then_downstream": ON_ERROR,
    "test_helpers::TestLockTaskSemaphore::test_redis_semaphore": STORAGE + " (conn)",
    "test_helpers::TestLockTaskSemaphore::test_semaphore_contention": STORAGE + " (conn)",
    "test_helpers::TestLockTaskSemaphore::test_semaphore_storage_types": STORAGE + " (conn)",
    "test_immediate::TestImmediate::test_immediate_reschedule": REVOCATION_KEYS,
    "test_immediate::TestImmediateMemoryStorage::test_immediate_real_storage":
        STORAGE + " (get_storage() returning a custom one)",
    "test_immediate::TestImmediateMemoryStorage::test_immediate_storage":
        STORAGE + " (get_storage() returning a custom one)",
    "test_priority::TestPriority::test_schedule_priority": SCHEDULED,
    "test_signals::TestSignals::test_signals_simple": SCHEDULED,
    "test_wrappers::TestWrappers::test_fake_wrapper": STORAGE + " (an instance of storage_class)",
    "test_wrappers::TestWrappers::test_wrappers": STORAGE + " (an instance of storage_class)",
}  # fmt: skip
