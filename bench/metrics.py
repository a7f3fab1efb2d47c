"""The figures reported per system, their aggregation over runs, scoter's ratios to each peer
on the same backend, and the targets those ratios are held against."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    digits: int = 0


METRICS = [
    Metric("enqueue_single", "enqueue 1-by-1", "tasks/s", True),
    Metric("enqueue_bulk", "enqueue bulk", "tasks/s", True),
    Metric("drain_1", "drain, 1 proc", "tasks/s", True),
    Metric("drain_2", "drain, 2 procs", "tasks/s", True),
    Metric("latency_p50_ms", "latency p50", "ms", False, 1),
    Metric("latency_p99_ms", "latency p99", "ms", False, 1),
    Metric("peak_rss_mb", "peak RSS", "MiB", False),
    Metric("idle_cpu_pct", "idle CPU", "% of a core", False, 2),
]
EXTRA = ["drain_1_wall", "drain_2_wall", "round_trips"]
"""Also aggregated, not shown in the table: drain rates timed from the consumers' start, and
on Redis the bare round trips per second of the one-by-one producer (see `round_trips`)."""


def summarize(samples: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
    }


def aggregate(runs: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Median, min, max and the samples of each metric over the runs."""
    keys = [m.key for m in METRICS] + EXTRA
    return {
        key: summarize([run[key] for run in runs if key in run])
        for key in keys
        if any(key in run for run in runs)
    }


def median(system: dict[str, Any], key: str) -> float | None:
    figure = system.get("metrics", {}).get(key)
    return None if figure is None else float(figure["median"])


def ratios(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """scoter's row → peer → metric → scoter's median / the peer's median, for each peer on
    the same backend in a group of scoter's row (its usual consumer, or the same executor)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, ours in systems.items():
        if ours["name"] != "scoter" or not ours.get("metrics"):
            continue
        for peer_key, peer in systems.items():
            if not _paired(ours, peer):
                continue
            row = {}
            for m in METRICS:
                a, b = median(ours, m.key), median(peer, m.key)
                if a is not None and b:
                    row[m.key] = a / b
            if row:
                out.setdefault(key, {})[peer_key] = row
    return out


def _paired(ours: dict[str, Any], peer: dict[str, Any]) -> bool:
    return (
        peer["name"] != "scoter"
        and peer["backend"] == ours["backend"]
        and bool(set(peer["groups"]) & set(ours["groups"]))
    )


def round_trips(systems: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """For each system timed against bare round trips (Redis): its one-by-one enqueue rate,
    the round trips per second, and the µs its enqueue call takes beyond one round trip."""
    rows = []
    for key, system in systems.items():
        rate, trips = median(system, "enqueue_single"), median(system, "round_trips")
        if rate and trips:
            extra_us = 1e6 / rate - 1e6 / trips
            rows.append({"system": key, "enqueue": rate, "round_trips": trips,
                         "extra_us": extra_us})  # fmt: skip
    return rows


@dataclass(frozen=True)
class Target:
    """A goal: `metric` of `system`, against `factor` x the same metric of `peer` (or an
    absolute figure when peer is None). `at_least` says which side passes."""

    system: str
    metric: str
    factor: float
    peer: str | None = None
    at_least: bool = True
    strict: bool = False

    def describe(self) -> str:
        op = (">" if self.strict else "≥") if self.at_least else ("<" if self.strict else "≤")
        if self.peer is None:
            return f"{self.system} {self.metric} {op} {self.factor:,.0f}"
        factor = "" if self.factor == 1 else f"{self.factor:g} x "
        return f"{self.system} {self.metric} {op} {factor}{self.peer}"


TARGETS = [
    Target("scoter-sqlite", "drain_1", 3, "huey-sqlite"),
    Target("scoter-sqlite", "enqueue_single", 1.5, "huey-sqlite"),
    Target("scoter-sqlite", "latency_p50_ms", 1, "huey-sqlite", at_least=False, strict=True),
    Target("scoter-sqlite", "idle_cpu_pct", 1.0, None, at_least=False, strict=True),
    Target("scoter-redis", "drain_1", 3, "huey-redis"),
    Target("scoter-redis", "enqueue_single", 1.5, "huey-redis"),
    Target("scoter-redis", "enqueue_bulk", 50_000, None),
    Target("scoter-redis", "latency_p50_ms", 1.25, "huey-redis", at_least=False),
    Target("scoter-process-sqlite", "drain_1", 1.5, "huey-process-sqlite"),
    Target("scoter-process-redis", "drain_1", 1.5, "huey-process-redis"),
    Target("scoter-postgres", "drain_1", 4, "procrastinate-postgres"),
    Target("scoter-postgres", "latency_p50_ms", 1, "procrastinate-postgres", at_least=False),
]


OVERHEAD = [
    Target("scoter-metrics-sqlite", "drain_1", 0.95, "scoter-sqlite"),
    Target("scoter-metrics-redis", "drain_1", 0.95, "scoter-redis"),
]
"""Variants against scoter's own row in the same run: with Prometheus metrics on, the drain
stays within 5 % of metrics off. Checked only in a run that selected the variant."""


def check_targets(systems: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target with scoter's median, the peer's, the ratio and whether it is met
    (None when either side did not run)."""
    overhead = [t for t in OVERHEAD if t.system in systems]
    return [_check(t, systems) for t in [*TARGETS, *overhead]]


def _check(t: Target, systems: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ours = median(systems.get(t.system, {}), t.metric)
    theirs = median(systems.get(t.peer, {}), t.metric) if t.peer else None
    ratio = ours / theirs if ours is not None and theirs else None
    value = ratio if t.peer else ours
    met = None if value is None else _compare(value, t.factor, t)
    return {
        "target": t.describe(),
        "system": t.system,
        "metric": t.metric,
        "peer": t.peer,
        "value": ours,
        "reference": theirs,
        "ratio": ratio,
        "met": met,
    }


def _compare(value: float, limit: float, t: Target) -> bool:
    if t.at_least:
        return value > limit if t.strict else value >= limit
    return value < limit if t.strict else value <= limit
