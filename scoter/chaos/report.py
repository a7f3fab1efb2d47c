"""What a chaos run did and found, and its rich table and text."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from scoter.chaos.evidence import CHILD, KINDS, SIGKILL, SIGSTOP, SIGTERM, STALL, Disruption
from scoter.chaos.settings import Settings
from scoter.config import redact


@dataclass
class Handoffs:
    """Delays from a disruption to the next attempt's start."""

    count: int = 0
    worst: float = 0.0
    total: float = 0.0
    slow: int = 0
    """Claimable again but waiting longer than the limit, because no consumer had a free slot."""

    def add(self, delay: float) -> None:
        self.count += 1
        self.worst = max(self.worst, delay)
        self.total += delay

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


UNEXPLAINED = "unexplained"
PAST_DEADLINE = "ran past the drain deadline, ignoring stop_requested"
CAUSES = {
    SIGKILL: SIGKILL,
    CHILD: CHILD,
    SIGSTOP: "lease lost while SIGSTOPped",
    STALL: "lease lost in a storage stall",
}
"""Duplicate causes, by the disruption that cost the first run its lease."""
MAX_PROBLEMS_SHOWN = 20
MAX_ERRORS_SHOWN = 5


@dataclass
class Report:
    """What a chaos run did and found. `ok` when nothing was lost and nothing is unexplained."""

    settings: Settings
    kills: Counter[str] = field(default_factory=Counter)
    enqueued: int = 0
    done: int = 0
    dead: int = 0
    runs: int = 0
    completions: int = 0
    duplicates: Counter[str] = field(default_factory=Counter)
    """Extra completions by cause: SIGKILL, CHILD, "lease lost while SIGSTOPped", UNEXPLAINED."""
    overlaps: int = 0
    overlaps_explained: int = 0
    longest_overlap: float = 0.0
    handoffs: dict[str, Handoffs] = field(default_factory=lambda: defaultdict(Handoffs))
    stalls: list[Disruption] = field(default_factory=list)
    """Times the storage took no writes for a while (see `StallProbe`)."""
    dispatch: float = 0.0
    """Longest time from a claim to the task's start (waiting for a worker or child)."""
    worst_drain: float = 0.0
    """Longest time from a SIGTERM to that consumer's exit."""
    chaos_seconds: float = 0.0
    duration: float = 0.0
    problems: list[str] = field(default_factory=list)
    storage_errors: Counter[str] = field(default_factory=Counter)
    """Storage calls the consumers logged as failed (see `storage_errors`), by message."""
    workdir: Path | None = None

    @property
    def lost(self) -> int:
        return self.enqueued - self.done - self.dead

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        self.problems.append(text)


# -- printing --------------------------------------------------------------------------------


def _bad(text: str, bad: bool) -> str:
    return f"[bold red]{text}[/bold red]" if bad else text


def _handoff_text(handoffs: Handoffs, limit: float) -> str:
    if not handoffs.count:
        return "none"
    text = f"worst {handoffs.worst:.3f} s, mean {handoffs.mean:.3f} s over {handoffs.count}"
    if handoffs.slow:
        text += f"; {handoffs.slow} waited over {limit:.1f} s for a free slot"
    return text


def report_table(report: Report) -> Table:
    s = report.settings
    table = Table(title=f"scoter chaos: {s.executor} executor", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("storage", redact(s.url))
    table.add_row("tasks", f"{report.enqueued} on {s.consumers} consumers x {s.workers}")
    kills = ", ".join(f"{report.kills[k]} {k}" for k in KINDS if k in report.kills) or "none"
    table.add_row("signals", f"{kills} over {report.chaos_seconds:.1f} s (seed {s.seed})")
    table.add_row("succeeded", str(report.done))
    table.add_row("dead", _bad(str(report.dead), report.dead > 0))
    table.add_row("lost", _bad(str(report.lost), report.lost != 0))
    table.add_row("runs", f"{report.runs} started, {report.completions} completed")
    table.add_row("duplicates", _duplicates_text(report))
    table.add_row("overlaps", _overlaps_text(report))
    for kind in (SIGTERM, SIGKILL, CHILD):
        if kind != CHILD or report.handoffs[kind].count:
            text = _handoff_text(report.handoffs[kind], s.handoff_limit)
            table.add_row(f"hand-off after {kind}", text)
    table.add_row("storage stalls", _stalls_text(report))
    table.add_row("storage errors logged", str(sum(report.storage_errors.values())))
    table.add_row("claim to start", f"worst {report.dispatch:.3f} s")
    table.add_row("drain after SIGTERM", f"worst {report.worst_drain:.2f} s")
    table.add_row("total time", f"{report.duration:.1f} s")
    return table


def _stalls_text(report: Report) -> str:
    if not report.stalls:
        return "none"
    longest = max(s.until - s.at for s in report.stalls)
    threshold = report.settings.lease / 4
    return f"{len(report.stalls)} over {threshold:.1f} s, longest {longest:.2f} s"


def _duplicates_text(report: Report) -> str:
    total = sum(report.duplicates.values())
    if not total:
        return "0"
    causes = ", ".join(
        _bad(f"{n} {cause}", cause == UNEXPLAINED) for cause, n in sorted(report.duplicates.items())
    )
    return f"{total} ({causes})"


def _overlaps_text(report: Report) -> str:
    if not report.overlaps:
        return "0"
    unexplained = report.overlaps - report.overlaps_explained
    text = (
        f"{report.overlaps}, longest {report.longest_overlap:.2f} s "
        f"({report.overlaps_explained} after a lease lost to a SIGSTOP or storage stall"
    )
    return text + (_bad(f", {unexplained} unexplained)", True) if unexplained else ")")


def print_report(report: Report, console: Console) -> None:
    console.print(report_table(report))
    for text in report.problems[:MAX_PROBLEMS_SHOWN]:
        console.print(f"[red]✗[/red] {text}", highlight=False)
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        console.print(f"… and {len(report.problems) - MAX_PROBLEMS_SHOWN} more problem(s)")
    for text, count in report.storage_errors.most_common(MAX_ERRORS_SHOWN):
        line = f"[yellow]![/yellow] {count} x a storage call failed: {text}"
        console.print(line, highlight=False)
    if report.ok:
        console.print(
            f"[bold green]nothing lost, nothing unexplained: all {report.enqueued} tasks "
            "succeeded[/bold green]"
        )
