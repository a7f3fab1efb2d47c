"""The terminal report (rich) of a results document."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bench.metrics import METRICS, Metric, round_trips


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def cell(figure: dict[str, Any] | None, metric: Metric) -> str:
    """'median (min-max)'; just the median for a single run."""
    if figure is None:
        return "-"
    d = metric.digits
    text = fmt(figure["median"], d)
    if len(figure["samples"]) > 1:
        text += f"\n[dim]{fmt(figure['min'], d)}-{fmt(figure['max'], d)}[/]"
    return text


def results_table(results: dict[str, Any]) -> Table:
    table = Table(title=f"medians of {results['runs']} run(s), [dim]min-max below[/]")
    table.add_column("system")
    for m in METRICS:
        table.add_column(f"{m.label}\n[dim]{m.unit}[/]", justify="right")
    for key, system in results["systems"].items():
        if system.get("skipped"):
            continue
        metrics = system.get("metrics", {})
        table.add_row(key, *(cell(metrics.get(m.key), m) for m in METRICS))
    return table


def ratios_table(results: dict[str, Any]) -> Table:
    table = Table(
        title="scoter ÷ peer (medians; above 1 is better for rates, below 1 for "
        "latency, memory, CPU)"
    )
    table.add_column("scoter on")
    table.add_column("peer")
    for m in METRICS:
        table.add_column(m.label, justify="right")
    for ours, peers in results["ratios"].items():
        for peer, row in peers.items():
            table.add_row(ours, peer, *(fmt(row.get(m.key), 2) for m in METRICS))
    return table


def targets_table(results: dict[str, Any]) -> Table:
    table = Table(title="targets")
    for column in ("target", "scoter", "peer", "ratio", "met"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for t in results["targets"]:
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "[dim]not run[/]"}[t["met"]]
        table.add_row(
            t["target"], fmt(t["value"], 2), fmt(t["reference"], 2), fmt(t["ratio"], 2), met
        )
    return table


def round_trips_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="one-by-one enqueue against bare round trips (Redis; medians)")
    for column in ("system", "enqueue 1-by-1/s", "round trips/s", "µs a call beyond one"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for row in rows:
        table.add_row(
            row["system"], fmt(row["enqueue"]), fmt(row["round_trips"]), fmt(row["extra_us"], 1)
        )
    return table


def print_report(console: Console, results: dict[str, Any]) -> None:
    console.print(results_table(results))
    if results["ratios"]:
        console.print(ratios_table(results))
    console.print(targets_table(results))
    if rows := round_trips(results["systems"]):
        console.print(round_trips_table(rows))
    for key, system in results["systems"].items():
        if system.get("skipped"):
            console.print(f"[yellow]skipped[/] {key}: {system['skipped']}", highlight=False)
        for error in system.get("errors", []):
            console.print(f"[red]error[/] {key}: {error}", highlight=False)
