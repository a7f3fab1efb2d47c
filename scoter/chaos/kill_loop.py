"""The disruption loop: SIGTERM, SIGKILL, SIGSTOP (and, with the process executor, SIGKILL of a
child) aimed at a random consumer every few tenths of a second, replacing the ones it ended."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

from scoter.chaos.evidence import CHILD, KINDS, SIGKILL, SIGSTOP, SIGTERM, Disruption
from scoter.chaos.fleet import Fleet, Member, children_of
from scoter.chaos.report import Report
from scoter.chaos.settings import Settings


class KillLoop:
    """Disrupts the fleet and keeps the list of what it sent (the checks' evidence)."""

    def __init__(
        self,
        settings: Settings,
        fleet: Fleet,
        rng: random.Random,
        report: Report,
        say: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.fleet = fleet
        self.rng = rng
        self.report = report
        self.say = say
        self.disruptions: list[Disruption] = []

    def run(self, finished: Callable[[], bool]) -> None:
        """Disrupt a random consumer every few tenths of a second, until time runs out or
        `finished()` (looked at twice a second)."""
        s = self.settings
        began = time.monotonic()
        deadline = began + s.seconds
        next_at = time.monotonic() + self.rng.uniform(*s.pause)
        next_look = 0.0
        while time.monotonic() < deadline and len(self.disruptions) < s.max_disruptions:
            now = time.monotonic()
            self.fleet.cont_due(time.time())
            if now >= next_look:
                if finished():
                    break
                next_look = now + 0.5
            if now >= next_at:
                self.disrupt_one()
                next_at = now + self.rng.uniform(*s.pause)
            time.sleep(0.02)
        self.fleet.cont_all()
        self.report.chaos_seconds = time.monotonic() - began
        self.say(f"stopped disrupting after {len(self.disruptions)} signals")

    def disrupt_one(self) -> None:
        targets = self.fleet.targets()
        if not targets:
            return
        kinds = KINDS if self.settings.executor == "process" else KINDS[:3]
        actions = {SIGTERM: self.sigterm, SIGKILL: self.sigkill, SIGSTOP: self.sigstop,
                   CHILD: self.kill_child}  # fmt: skip
        actions[self.rng.choice(kinds)](self.rng.choice(targets))

    def note(self, disruption: Disruption, detail: str = "") -> None:
        self.disruptions.append(disruption)
        self.report.kills[disruption.kind] += 1
        self.say(f"{disruption.kind} → pid {disruption.target}{detail}")

    def sigterm(self, member: Member) -> None:
        """SIGTERM (it drains and exits), and start a replacement at once."""
        self.note(Disruption(SIGTERM, time.time(), member.pid, member.pid))
        self.fleet.terminate(member)
        self.replace()

    def sigkill(self, member: Member) -> None:
        self.note(Disruption(SIGKILL, time.time(), member.pid, member.pid))
        self.fleet.kill(member)
        self.replace()

    def replace(self) -> None:
        member = self.fleet.start()
        self.say(f"started consumer {member.number} (pid {member.pid})")

    def sigstop(self, member: Member) -> None:
        """SIGSTOP for up to two leases; `Fleet.cont_due` sends the SIGCONT."""
        pause = self.rng.uniform(0.1, 2 * self.settings.lease)
        now = time.time()
        member.stopped = Disruption(SIGSTOP, now, member.pid, member.pid, until=now + pause)
        member.process.send_signal(signal.SIGSTOP)
        self.note(member.stopped, f" for {pause:.1f} s")

    def kill_child(self, member: Member) -> None:
        """SIGKILL one of the consumer's child processes, if it has any."""
        children = children_of(member.pid)
        if not children:
            return
        child = self.rng.choice(children)
        disruption = Disruption(CHILD, time.time(), member.pid, child)
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.note(disruption, f" (child of {member.pid})")
