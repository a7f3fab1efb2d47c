"""The chaos checker on hand-made records: each rule accepts what it should and flags the rest.

The real rounds (test_chaos.py) show that scoter passes; these show that the checks can fail.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scoter.chaos.checker import Checker, check_drains
from scoter.chaos.evidence import (
    CHILD,
    SIGKILL,
    SIGSTOP,
    SIGTERM,
    STALL,
    Disruption,
    Evidence,
    storage_errors,
)
from scoter.chaos.fleet import Member
from scoter.chaos.report import PAST_DEADLINE, UNEXPLAINED, Report
from scoter.chaos.settings import Settings
from scoter.chaos.tasks import COMPLETED, INTERRUPTED, Run
from scoter.consumer.processes import KILLED_AT_DEADLINE
from scoter.consumer.supervisor import HELD_OFF
from scoter.states import State
from scoter.storage.base import TaskInfo

LEASE = 2.0
A, B = 101, 202
"""Two consumers' pids."""
T0 = 1000.0


@dataclass
class Story:
    """One task's attempts: history entries and runs, told in order."""

    history: list[dict[str, object]] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    disruptions: list[Disruption] = field(default_factory=list)
    exits: dict[int, float] = field(default_factory=dict)
    stalls: list[Disruption] = field(default_factory=list)

    def attempt(
        self,
        consumer: int,
        claimed: float,
        ended: float | None,
        outcome: str,
        settled: float,
        ran: str | None = COMPLETED,
        pid: int | None = None,
        detail: str | None = None,
        recorded: bool = True,
    ) -> None:
        number = len(self.history) + 1
        self.history.append(
            {"attempt": number, "outcome": outcome, "at": settled, "consumer": f"h:{consumer}:x"}
        )
        if detail is not None:
            self.history[-1]["detail"] = detail
        worker = pid or consumer
        if recorded:
            run = Run("t", number, worker, consumer, claimed + LEASE, claimed + 0.01, ended, ran)
            self.runs.append(run)

    def signal(self, kind: str, at: float, target: int, until: float = 0.0) -> None:
        consumer = B if kind == CHILD else target
        self.disruptions.append(Disruption(kind, at, consumer, target, until or float("inf")))

    def check(self, state: State = State.DONE) -> Report:
        info = TaskInfo(
            id="t", name="plain", queue="chaos", state=state, priority=0, eta=None,
            attempts=len(self.history), errors=0, interruptions=0, crashes=0, max_crashes=9,
            consumer=None, lease_expires=None, result=None, error=None, reason=None,
            payload=b"", created_at=T0 - 1, updated_at=T0, history=self.history,
        )  # fmt: skip
        report = Report(Settings(url="memory://", lease=LEASE))
        report.enqueued = 1
        evidence = Evidence(self.disruptions, self.exits, self.stalls)
        Checker(report.settings, evidence, report).check({"t": info}, self.runs)
        return report


def test_one_clean_run_passes() -> None:
    story = Story()
    story.attempt(A, T0, T0 + 0.5, "succeeded", T0 + 0.51)
    report = story.check()
    assert report.ok and report.done == 1 and report.lost == 0


def test_a_task_left_queued_is_lost() -> None:
    report = Story().check(State.QUEUED)
    assert report.lost == 1 and "lost (queued)" in report.problems[0]


def test_a_duplicate_after_a_sigkill_of_the_holder_is_explained() -> None:
    story = Story()
    story.attempt(A, T0, T0 + 0.5, "crashed", T0 + 2.6)  # completed, killed before its ack
    story.signal(SIGKILL, T0 + 0.55, A)
    story.attempt(B, T0 + 2.7, T0 + 3.2, "succeeded", T0 + 3.21)
    report = story.check()
    assert report.ok, report.problems
    assert report.duplicates == {SIGKILL: 1}
    assert report.handoffs[SIGKILL].count == 1


def test_a_duplicate_with_no_signal_is_flagged() -> None:
    story = Story()
    story.attempt(A, T0, T0 + 0.5, "crashed", T0 + 2.6)
    story.attempt(B, T0 + 2.7, T0 + 3.2, "succeeded", T0 + 3.21)
    report = story.check()
    assert report.duplicates == {UNEXPLAINED: 1}
    assert any("lost its lease" in p for p in report.problems)
    assert any("completed but ran again" in p for p in report.problems)


def test_a_sigkill_after_the_lease_was_rescued_explains_nothing() -> None:
    story = Story()
    story.attempt(A, T0, T0 + 0.5, "crashed", T0 + 2.6)
    story.signal(SIGKILL, T0 + 2.65, A)  # too late to have cost the lease
    story.attempt(B, T0 + 2.7, T0 + 3.2, "succeeded", T0 + 3.21)
    assert not story.check().ok


def test_an_overlap_after_a_sigstop_past_the_lease_is_explained() -> None:
    story = Story()
    story.signal(SIGSTOP, T0 + 0.1, A, until=T0 + 3.5)
    story.attempt(A, T0, T0 + 3.6, "crashed", T0 + 2.4)  # woke up and finished anyway
    story.attempt(B, T0 + 2.5, T0 + 3.0, "succeeded", T0 + 3.01)
    report = story.check()
    assert report.ok, report.problems
    assert report.overlaps == report.overlaps_explained == 1
    assert report.duplicates == {"lease lost while SIGSTOPped": 1}


def test_an_overlap_without_a_lease_loss_is_a_g2_violation() -> None:
    story = Story()
    story.attempt(A, T0, T0 + 1.0, "crashed", T0 + 0.2)  # rescued while it ran, never stopped
    story.attempt(B, T0 + 0.3, T0 + 0.8, "succeeded", T0 + 0.81)
    report = story.check()
    assert report.overlaps == 1 and report.overlaps_explained == 0
    assert any("ran at the same time" in p for p in report.problems)


def test_an_attempt_claimed_before_the_previous_let_go_is_a_g2_violation() -> None:
    story = Story()
    story.attempt(A, T0, None, "interrupted", T0 + 1.0, ran=None)
    story.exits[A] = T0 + 0.4
    story.attempt(B, T0 + 0.5, T0 + 0.8, "succeeded", T0 + 0.81)
    report = story.check()
    assert any("before attempt 1 let go" in p for p in report.problems)


def test_a_thread_still_running_after_its_release_is_flagged() -> None:
    story = Story()
    story.signal(SIGTERM, T0 + 0.1, A)
    story.attempt(A, T0, None, "interrupted", T0 + 1.1, ran=None)
    story.exits[A] = T0 + 1.3  # its process exited after the next attempt had started
    story.attempt(B, T0 + 1.15, T0 + 1.5, "succeeded", T0 + 1.51)
    report = story.check()
    assert any(
        "released at the drain deadline while its thread ran on" in p for p in report.problems
    )


def test_a_run_completed_then_released_at_the_drain_deadline_is_flagged() -> None:
    story = Story()
    story.signal(SIGTERM, T0 + 0.1, A)
    story.attempt(A, T0, T0 + 1.09, "interrupted", T0 + 1.1)
    story.exits[A] = T0 + 1.12
    story.attempt(B, T0 + 1.15, T0 + 1.5, "succeeded", T0 + 1.51)
    report = story.check()
    assert report.duplicates == {UNEXPLAINED: 1}
    assert any("released it at the drain deadline instead of acking" in p for p in report.problems)


def test_a_thread_finishing_during_its_hold_off_is_a_documented_duplicate() -> None:
    story = Story()
    story.signal(SIGTERM, T0 + 0.1, A)
    held_off = f"consumer shutdown: {HELD_OFF}, claimable in 1 s"
    story.attempt(A, T0, T0 + 1.12, "interrupted", T0 + 1.1, detail=held_off)
    story.exits[A] = T0 + 1.15
    story.attempt(B, T0 + 2.6, T0 + 3.0, "succeeded", T0 + 3.01)
    younger = [Run(f"y{i}", 1, B, B, T0 + 1.5 + i / 10 + LEASE, T0 + 1.6, T0 + 1.7, COMPLETED)
               for i in range(5)]  # claimed while it was held off: no G5 violation  # fmt: skip
    story.runs.extend(younger)
    report = story.check()
    assert [p for p in report.problems if "never enqueued" not in p] == []
    assert report.duplicates == {PAST_DEADLINE: 1}


def test_a_child_killed_as_it_finished_at_the_deadline_is_a_documented_duplicate() -> None:
    story = Story()
    story.signal(SIGTERM, T0 + 0.1, A)
    killed = f"consumer shutdown: {KILLED_AT_DEADLINE}"
    story.attempt(A, T0, T0 + 1.08, "interrupted", T0 + 1.15, pid=A + 1, detail=killed)
    story.attempt(B, T0 + 1.2, T0 + 1.5, "succeeded", T0 + 1.51)
    report = story.check()
    assert report.ok, report.problems
    assert report.duplicates == {PAST_DEADLINE: 1}


def test_a_fast_handoff_after_sigterm_is_measured() -> None:
    story = Story()
    story.signal(SIGTERM, T0 + 0.1, A)
    story.attempt(A, T0, T0 + 0.9, "interrupted", T0 + 0.9, ran=INTERRUPTED)
    story.exits[A] = T0 + 0.95
    story.attempt(B, T0 + 0.95, T0 + 1.5, "succeeded", T0 + 1.51)
    report = story.check()
    assert report.ok, report.problems
    assert report.handoffs[SIGTERM].count == 1
    assert 0.05 < report.handoffs[SIGTERM].worst < 0.07


def test_a_released_task_passed_over_by_younger_ones_is_a_g5_violation() -> None:
    story = Story()
    story.attempt(A, T0, T0 + 0.9, "interrupted", T0 + 0.9, ran=INTERRUPTED)
    story.attempt(B, T0 + 3.0, T0 + 3.5, "succeeded", T0 + 3.51)
    younger = [Run(f"y{i}", 1, B, B, T0 + 1.5 + i / 10 + LEASE, T0 + 1.6, T0 + 1.7, COMPLETED)
               for i in range(5)]  # fmt: skip
    story.runs.extend(younger)
    report = story.check()
    assert any("younger task(s) were claimed before it" in p for p in report.problems)


def test_a_released_task_waiting_for_a_free_slot_is_not_a_violation() -> None:
    story = Story()
    story.attempt(A, T0, T0 + 0.9, "interrupted", T0 + 0.9, ran=INTERRUPTED)
    story.attempt(B, T0 + 3.0, T0 + 3.5, "succeeded", T0 + 3.51)
    report = story.check()
    assert report.ok, report.problems
    assert report.handoffs[SIGTERM].slow == 1


def test_a_crashed_holder_requeued_late_is_a_g5_violation() -> None:
    story = Story()
    story.attempt(A, T0, None, "crashed", T0 + 9.0, ran=None)
    story.signal(SIGKILL, T0 + 0.2, A)
    story.attempt(B, T0 + 9.1, T0 + 9.5, "succeeded", T0 + 9.51)
    report = story.check()
    assert any("queued again" in p and "after the SIGKILL" in p for p in report.problems)


def test_a_child_killed_by_the_chaos_explains_a_crash() -> None:
    story = Story()
    child = 303
    story.attempt(B, T0, None, "crashed", T0 + 0.3, ran=None, pid=child)
    story.signal(CHILD, T0 + 0.25, child)
    story.attempt(A, T0 + 0.4, T0 + 0.8, "succeeded", T0 + 0.81)
    report = story.check()
    assert report.ok, report.problems
    assert report.handoffs[CHILD].count == 1


def test_an_unrecorded_attempt_died_with_its_holders_last_child_kill() -> None:
    """Claimed ahead, it waited in the parent while one child died, then started in another
    child and died with it before it could record its start."""
    story = Story()
    story.signal(CHILD, T0 + 0.25, 303)
    story.signal(CHILD, T0 + 3.0, 304)
    story.attempt(B, T0, None, "crashed", T0 + 3.01, recorded=False)
    story.attempt(A, T0 + 3.1, T0 + 3.5, "succeeded", T0 + 3.51)
    report = story.check()
    assert report.ok, report.problems
    assert report.handoffs[CHILD].count == 1


def test_a_lease_lost_in_a_storage_stall_during_a_sigstop_is_explained() -> None:
    story = Story()
    story.signal(SIGSTOP, T0 + 0.2, B, until=T0 + 3.0)  # B held the storage's write lock
    story.stalls.append(Disruption(STALL, T0 + 0.2, 0, 0, until=T0 + 2.9))
    story.attempt(A, T0, T0 + 3.1, "crashed", T0 + 2.95)  # A's heartbeats could not land
    story.attempt(B, T0 + 3.0, T0 + 3.5, "succeeded", T0 + 3.51)
    report = story.check()
    assert report.ok, report.problems
    assert report.duplicates == {"lease lost in a storage stall": 1}
    assert report.overlaps == report.overlaps_explained == 1


def test_a_storage_stall_with_no_sigstop_explains_nothing() -> None:
    story = Story()
    story.stalls.append(Disruption(STALL, T0 + 0.2, 0, 0, until=T0 + 2.9))
    story.attempt(A, T0, T0 + 3.1, "crashed", T0 + 2.95)
    story.attempt(B, T0 + 3.0, T0 + 3.5, "succeeded", T0 + 3.51)
    assert not story.check().ok


def test_a_lease_lost_while_draining_is_flagged_as_such() -> None:
    story = Story()
    story.signal(SIGTERM, T0 + 0.5, A)
    story.attempt(A, T0, T0 + 3.0, "crashed", T0 + 2.7)  # no heartbeat, no release in time
    story.attempt(B, T0 + 2.8, T0 + 3.2, "succeeded", T0 + 3.21)
    report = story.check()
    assert any("lost its lease while draining after a SIGTERM" in p for p in report.problems)


def test_a_task_claimed_after_the_sigterm_and_left_to_expire_is_flagged() -> None:
    story = Story()
    story.signal(SIGTERM, T0 - 1.0, A)
    story.attempt(A, T0, None, "crashed", T0 + 2.3, ran=None)  # the consumer exited holding it
    story.exits[A] = T0 + 0.1
    story.attempt(B, T0 + 2.4, T0 + 2.8, "succeeded", T0 + 2.81)
    report = story.check()
    assert any("claimed it after its SIGTERM" in p for p in report.problems)


@pytest.mark.parametrize(
    ("took", "stalled", "ok"),
    [(2.9, 0.0, True), (3.2, 0.0, False), (3.2, 1.5, True), (5.0, 1.5, False)],
)
def test_a_slow_drain_is_flagged_unless_the_storage_stalled_meanwhile(
    took: float, stalled: float, ok: bool
) -> None:
    """The limit is drain_timeout (1 s) + drain_slack (2 s) + the stall during the drain."""
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    member = Member(1, exited, Path("unused"), exited_at=T0 + took, exit_code=0)
    sigterm = Disruption(SIGTERM, T0, member.pid, member.pid, float("inf"))
    sigstop = Disruption(SIGSTOP, T0 - 1.0, B, B, until=T0 + 2.0)
    stalls = [Disruption(STALL, T0 + 0.2, 0, 0, until=T0 + 0.2 + stalled)] if stalled else []
    report = Report(Settings(url="memory://", lease=LEASE))
    check_drains(report.settings, [member], Evidence([sigterm, sigstop], {}, stalls), report)
    assert report.ok is ok, report.problems


def test_failed_storage_calls_in_the_consumers_logs_are_counted_by_message(tmp_path: Path) -> None:
    log = tmp_path / "consumer-1.log"
    log.write_text(
        "2026-01-01 10:00:00,001 INFO scoter.consumer: consumer c1 started\n"
        "2026-01-01 10:00:01,002 WARNING scoter.consumer: heartbeat failed, retrying every "
        "0.7s: DeadlockDetected('deadlock detected')\n"
        "2026-01-01 10:00:02,003 WARNING scoter.consumer: heartbeat failed, retrying every "
        "0.7s: DeadlockDetected('deadlock detected')\n"
        "2026-01-01 10:00:03,004 ERROR scoter.consumer: could not release task "
        "0123456789abcdef0123456789abcdef (PoolTimeout()); it runs again when its lease expires\n"
        "2026-01-01 10:00:04,005 WARNING scoter.consumer: task 0123456789abcdef0123456789abcdef "
        "(plain): lease lost, another consumer may run it\n"
        "2026-01-01 10:00:05,006 WARNING scoter.tasks: task 0123456789abcdef0123456789abcdef "
        "(plain) failed, retrying in 0.3 s: ValueError('the task's own') [attempt 1, queue q]\n"
    )
    assert storage_errors([log]) == {
        "heartbeat failed, retrying every N.Ns: DeadlockDetected('deadlock detected')": 2,
        "could not release task N (PoolTimeout()); it runs again when its lease expires": 1,
    }
