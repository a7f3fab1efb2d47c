"""The checks: task records, runs and disruptions turned into the report's findings."""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from scoter.chaos.evidence import (
    SIGKILL,
    SIGSTOP,
    SIGTERM,
    STALL,
    Disruption,
    Evidence,
    holder_pid,
)
from scoter.chaos.fleet import Member
from scoter.chaos.report import CAUSES, PAST_DEADLINE, UNEXPLAINED, Handoffs, Report
from scoter.chaos.settings import Settings
from scoter.chaos.tasks import COMPLETED, Run
from scoter.consumer.processes import KILLED_AT_DEADLINE
from scoter.consumer.supervisor import HELD_OFF, HOLD_OFF_S, SCHEDULE_INTERVAL_S
from scoter.states import State
from scoter.storage.base import TaskInfo

NOT_ACKED = "(SIGTERMed) released it at the drain deadline instead of acking it"
THREAD_RAN_ON = "released at the drain deadline while its thread ran on"
DRAINING = "while draining after a SIGTERM"
CLAIMED_LATE = "claimed it after its SIGTERM"


@dataclass
class Attempt:
    """One attempt of a task: its run (if it got to record one) and its history entry."""

    number: int
    run: Run | None = None
    entry: dict[str, object] | None = None
    claimable_from: float = 0.0
    """When the task became claimable for this attempt (the previous attempt's end)."""

    @property
    def outcome(self) -> str | None:
        return None if self.entry is None else str(self.entry.get("outcome"))

    @property
    def settled_at(self) -> float | None:
        at = None if self.entry is None else self.entry.get("at")
        return float(at) if isinstance(at, (int, float)) else None

    @property
    def claimable_again(self) -> float | None:
        """When the next attempt could first be claimed: as this one let go, or after the
        hold-off of a task handed back while its thread ran on, and a promotion tick."""
        settled = self.settled_at
        if settled is not None and self.entry and HELD_OFF in str(self.entry.get("detail")):
            return settled + HOLD_OFF_S + SCHEDULE_INTERVAL_S
        return settled

    @property
    def holder(self) -> int | None:
        """The pid of the consumer that held the attempt, from its history entry."""
        return holder_pid(None if self.entry is None else self.entry.get("consumer"))


def attempts_of(info: TaskInfo, runs: Sequence[Run]) -> tuple[list[Attempt], list[str]]:
    """The task's attempts, 1..info.attempts, and what is inconsistent in the records."""
    attempts = [Attempt(n) for n in range(1, max(info.attempts, 0) + 1)]
    problems = []
    for entry in info.history:
        number = entry.get("attempt")
        if not isinstance(number, int) or not 1 <= number <= len(attempts):
            problems.append(f"history entry for an attempt that was never claimed: {entry}")
        elif attempts[number - 1].entry is not None:
            problems.append(f"two history entries for attempt {number}")
        else:
            attempts[number - 1].entry = entry
    for run in runs:
        if not 1 <= run.attempt <= len(attempts):
            problems.append(f"a run of attempt {run.attempt}, never claimed")
        elif attempts[run.attempt - 1].run is not None:
            problems.append(f"two runs of attempt {run.attempt}")
        else:
            attempts[run.attempt - 1].run = run
    for before, after in itertools.pairwise(attempts):
        after.claimable_from = before.settled_at or info.created_at
    if attempts:
        attempts[0].claimable_from = info.created_at
    return attempts, problems


class Checker:
    """Turns the task records, the runs and the disruptions into the report's findings."""

    def __init__(self, settings: Settings, evidence: Evidence, report: Report) -> None:
        self.settings = settings
        self.evidence = evidence
        self.report = report
        self.fresh_claims: list[float] = []

    def check(self, infos: dict[str, TaskInfo | None], runs: Sequence[Run]) -> None:
        by_task: dict[str, list[Run]] = defaultdict(list)
        for run in runs:
            by_task[run.task].append(run)
        self.fresh_claims = sorted(self.claimed(run) for run in runs if run.attempt == 1)
        for run in runs:
            self.report.dispatch = max(self.report.dispatch, run.started - self.claimed(run))
        self.report.runs = len(runs)
        self.report.completions = sum(run.outcome == COMPLETED for run in runs)
        unknown = set(by_task) - set(infos)
        if unknown:
            self.report.problem(f"{len(unknown)} run(s) of tasks this run never enqueued")
        for task_id, info in infos.items():
            self.task(task_id, info, by_task.get(task_id, []))

    def claimed(self, run: Run) -> float:
        return run.expires - self.settings.lease

    def task(self, task_id: str, info: TaskInfo | None, runs: list[Run]) -> None:
        if info is None or info.state not in (State.DONE, State.DEAD):
            state = "missing" if info is None else info.state.value
            self.report.problem(f"task {task_id}: lost ({state})")
            return
        if info.state is State.DEAD:
            self.report.dead += 1
            self.report.problem(f"task {task_id}: dead ({info.reason}): {info.error}")
        else:
            self.report.done += 1
        attempts, problems = attempts_of(info, runs)
        for text in problems:
            self.report.problem(f"task {task_id}: {text}")
        self.order(task_id, attempts)
        self.crashes(task_id, attempts)
        self.completions(task_id, info, attempts)
        self.overlaps(task_id, attempts)
        self.handoffs(task_id, attempts)

    # G2: attempt n+1 is claimed only once attempt n let go (settled, or its lease rescued).
    def order(self, task_id: str, attempts: list[Attempt]) -> None:
        for before, after in itertools.pairwise(attempts):
            if before.settled_at is None:
                self.report.problem(f"task {task_id}: attempt {before.number} has no outcome")
            elif after.run and after.run.started < before.settled_at - self.settings.clock_slack:
                self.report.problem(
                    f"task {task_id}: attempt {after.number} started "
                    f"{before.settled_at - after.run.started:.3f} s before attempt "
                    f"{before.number} let go (G2)"
                )

    # A lease is lost only to a SIGKILL, a killed child or a SIGSTOP of its holder.
    def crashes(self, task_id: str, attempts: list[Attempt]) -> None:
        for attempt in attempts:
            if attempt.outcome == "crashed" and self.crash_cause(attempt) is None:
                self.report.problem(
                    f"task {task_id}: attempt {attempt.number}: {self.lost_how(attempt)}"
                )

    def lost_how(self, attempt: Attempt) -> str:
        """What ended an attempt whose end has no accepted cause, for a problem's text."""
        settled = attempt.settled_at if attempt.settled_at is not None else math.inf
        run, holder = attempt.run, attempt.holder
        if attempt.outcome == "interrupted" and run is not None:
            if run.ended is None or run.ended > settled:
                return f"it was {THREAD_RAN_ON}, until it ended or its process exited"
            return f"it completed {settled - run.ended:.3f} s before its consumer {NOT_ACKED}"
        if attempt.outcome != "crashed":
            return f"it ended {attempt.outcome}"
        if cause := self.crash_cause(attempt):
            return f"its holder pid {holder} lost its lease to a {cause.kind}, yet it ran on"
        term = self.evidence.signalled(SIGTERM, holder, 0.0, settled)
        if term is not None and run is not None and self.claimed(run) > term.at:
            return (
                f"its holder pid {holder} {CLAIMED_LATE} ({self.claimed(run) - term.at:.2f} s "
                "after it: a follow-up claim landing while it stopped), then exited without "
                "releasing it: it came back only when the lease expired"
            )
        if term is not None:
            return (
                f"its holder pid {holder} lost its lease {DRAINING} ({settled - term.at:.2f} s "
                "after it), with no storage stall: it neither heartbeated nor released in time"
            )
        return (
            f"its holder pid {holder} lost its lease at {settled:.3f} with no SIGKILL or "
            "SIGSTOP of it, nor a storage stall: a heartbeat or a release failed"
        )

    def crash_cause(self, attempt: Attempt) -> Disruption | None:
        """The disruption that cost a crashed attempt its lease, or None."""
        settled = attempt.settled_at
        if attempt.outcome != "crashed" or settled is None:
            return None
        window = (attempt.claimable_from, settled)
        run = attempt.run
        if run is not None and (child := self.evidence.child_killed(run.pid, *window)):
            return child
        if kill := self.evidence.signalled(SIGKILL, attempt.holder, *window):
            return kill
        lease_start = settled - self.settings.lease - self.settings.clock_slack
        if stop := self.evidence.stopped_during(attempt.holder, lease_start, settled):
            return stop
        heartbeat = self.settings.lease / 3
        if stall := self.evidence.stalled_during(lease_start, settled, heartbeat):
            return stall
        if run is None:  # killed before it recorded its start: which child ran it is unknown
            return self.evidence.child_of_killed(attempt.holder, *window)
        return None

    # G1 and duplicates.
    def completions(self, task_id: str, info: TaskInfo, attempts: list[Attempt]) -> None:
        acked = [a for a in attempts if a.outcome == "succeeded"]
        if info.state is State.DONE and len(acked) != 1:
            self.report.problem(f"task {task_id}: done with {len(acked)} succeeded attempts")
        for attempt in acked:
            if attempt.run is None or attempt.run.outcome != COMPLETED:
                self.report.problem(
                    f"task {task_id}: attempt {attempt.number} was acked without completing"
                )
        for attempt in attempts:
            if attempt.run and attempt.run.outcome == COMPLETED and attempt not in acked:
                self.duplicate(task_id, attempt)

    def duplicate(self, task_id: str, attempt: Attempt) -> None:
        """A run that completed without being acked: the task ran again after it."""
        cause = self.crash_cause(attempt)
        if cause is None and self.finished_past_deadline(attempt):
            self.report.duplicates[PAST_DEADLINE] += 1
            return
        self.report.duplicates[CAUSES[cause.kind] if cause else UNEXPLAINED] += 1
        if cause is not None:
            return
        self.report.problem(
            f"task {task_id}: attempt {attempt.number} completed but ran again: "
            f"{self.lost_how(attempt)}"
        )

    def finished_past_deadline(self, attempt: Attempt) -> bool:
        """Whether a task that ran on past the drain deadline finished just as it was handed
        back: in its thread after the release (held off until the process exited), or in a
        child killed at the deadline before its result reached the parent."""
        run, settled = attempt.run, attempt.settled_at
        if run is None or run.ended is None or settled is None or attempt.entry is None:
            return False
        detail = str(attempt.entry.get("detail"))
        if KILLED_AT_DEADLINE in detail:
            return True
        return HELD_OFF in detail and run.ended >= settled - self.settings.clock_slack

    # G2: two runs of one task at the same time only after a lease loss while stopped.
    def overlaps(self, task_id: str, attempts: list[Attempt]) -> None:
        ran = [a for a in attempts if a.run is not None]
        for i, earlier in enumerate(ran):
            end = self.end_of(earlier)
            for later in ran[i + 1 :]:
                assert later.run is not None
                overlap = end - later.run.started
                if overlap > self.settings.clock_slack:
                    self.overlap(task_id, earlier, later, overlap)

    def overlap(self, task_id: str, earlier: Attempt, later: Attempt, seconds: float) -> None:
        self.report.overlaps += 1
        self.report.longest_overlap = max(self.report.longest_overlap, seconds)
        cause = self.crash_cause(earlier)
        if cause is not None and cause.kind in (SIGSTOP, STALL):
            self.report.overlaps_explained += 1
            return
        run = earlier.run
        assert run is not None
        self.report.problem(
            f"task {task_id}: attempts {earlier.number} ({earlier.outcome}, pid {run.pid}) and "
            f"{later.number} ran at the same time for {seconds:.3f} s; the first: "
            f"{self.lost_how(earlier)} (G2)"
        )

    def end_of(self, attempt: Attempt) -> float:
        """When the attempt's run stopped: recorded, or when its process was killed or exited."""
        run = attempt.run
        assert run is not None
        if run.ended is not None:
            return run.ended
        child = self.evidence.child_killed(run.pid, run.started, math.inf)
        if child is not None:
            return child.at
        kill = self.evidence.signalled(SIGKILL, attempt.holder, run.started, math.inf)
        if kill is not None:
            return kill.at
        if run.pid != attempt.holder and attempt.settled_at is not None:
            return attempt.settled_at  # a child process ended by its parent, which then settled
        exited = self.evidence.exit_of(run.pid)
        return exited if exited is not None else math.inf

    # G5: how soon another consumer took over.
    def handoffs(self, task_id: str, attempts: list[Attempt]) -> None:
        """Measured to the next attempt's start; not when that attempt died unrecorded."""
        for attempt, following in itertools.pairwise(attempts):
            origin = self.handoff_origin(attempt)
            claimable = attempt.claimable_again
            if origin is None or claimable is None:
                continue
            kind, signalled = origin
            self.check_recovery(task_id, attempt, kind, signalled)
            if following.run is None:
                continue
            handoffs = self.report.handoffs[kind]
            handoffs.add(following.run.started - signalled)
            waited = self.claimed(following.run) - claimable
            if waited > self.settings.handoff_limit:
                self.check_passed_over(task_id, attempt, claimable, waited, handoffs)

    def handoff_origin(self, attempt: Attempt) -> tuple[str, float] | None:
        """(kind, when) of the signal that ended the attempt and started its hand-off."""
        if attempt.outcome == "interrupted" and attempt.settled_at is not None:
            return SIGTERM, attempt.settled_at
        cause = self.crash_cause(attempt)
        if cause is None or cause.kind in (SIGSTOP, STALL):
            return None
        return cause.kind, cause.at

    def check_recovery(self, task_id: str, attempt: Attempt, kind: str, signalled: float) -> None:
        """G5: a crashed holder's task is queued again as soon as its lease expires."""
        assert attempt.settled_at is not None
        took = attempt.settled_at - signalled
        stalled = self.evidence.stalled_seconds(signalled, attempt.settled_at)
        limit = self.settings.recovery_limit(kind) + stalled
        if took > limit:
            self.report.problem(
                f"task {task_id}: queued again {took:.2f} s after the {kind} of its holder "
                f"(limit {limit:.2f} s, G5)"
            )

    def check_passed_over(
        self, task_id: str, attempt: Attempt, claimable: float, waited: float, handoffs: Handoffs
    ) -> None:
        """A task claimable again waits only while no consumer has a free slot: then no task
        younger than it (a first attempt) may start before it (G5, "claimable at once")."""
        slack = self.settings.claim_slack
        start, end = claimable + slack, claimable + waited - slack
        fresh = self.fresh_claims
        younger = bisect.bisect_left(fresh, end) - bisect.bisect_right(fresh, start)
        if younger <= 0:
            handoffs.slow += 1
            return
        self.report.problem(
            f"task {task_id}: claimable again after attempt {attempt.number} "
            f"({attempt.outcome}), yet it waited {waited:.2f} s to be claimed while {younger} "
            "younger task(s) were claimed before it (G5)"
        )


def check_drains(
    settings: Settings, members: Sequence[Member], evidence: Evidence, report: Report
) -> None:
    """G6: a SIGTERMed consumer exits 0 within its drain timeout (plus `drain_slack`), plus
    the time the storage stalled meanwhile: its releases wait for a write lock that a
    SIGSTOPped consumer holds."""
    sent = {d.target: d.at for d in evidence.disruptions if d.kind == SIGTERM}
    for member in members:
        if member.pid not in sent or member.exited_at is None:
            continue
        drain = member.exited_at - sent[member.pid]
        report.worst_drain = max(report.worst_drain, drain)
        if member.exit_code != 0:
            report.problem(f"consumer pid {member.pid} exited {member.exit_code} after SIGTERM")
        stalled = evidence.stalled_seconds(sent[member.pid], member.exited_at)
        if drain > settings.drain_timeout + settings.drain_slack + stalled:
            report.problem(f"consumer pid {member.pid} took {drain:.2f} s to drain (G6)")
