"""The drain-rate plot (matplotlib, a bench-only dependency): one bar per system and consumer
count, grouped by backend, with min-max whiskers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BACKENDS = ("sqlite", "redis", "postgres")


def drain_plot(results: dict[str, Any], path: Path) -> Path | None:
    """Write the PNG; None when matplotlib is not installed or nothing drained."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = sorted(
        ((k, s) for k, s in results["systems"].items() if "drain_1" in s.get("metrics", {})),
        key=_order,
    )
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * len(rows) + 2), 4.5), dpi=110)
    width = 0.4
    for offset, metric, label in (
        (-width / 2, "drain_1", "1 process"),
        (width / 2, "drain_2", "2 processes"),
    ):
        _bars(ax, rows, offset, width, metric, label)
    ax.set_xticks(range(len(rows)), [_label(k) for k, _ in rows], rotation=30, ha="right")
    ax.set_ylabel("tasks per second (median; whiskers: min-max)")
    ax.set_title(f"Drain rate of no-op tasks, {results['runs']} run(s) each")
    ax.legend(title="scoter blue, peers grey")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _order(row: tuple[str, Any]) -> tuple[int, str, bool]:
    """By backend, the usual consumers first, then each executor's rows; scoter first."""
    system = row[1]
    return (
        BACKENDS.index(system["backend"]),
        system.get("executor") or "",
        system["name"] != "scoter",
    )


def _bars(
    ax: Any, rows: list[tuple[str, Any]], offset: float, width: float, metric: str, label: str
) -> None:
    xs, heights, low, high, colors = [], [], [], [], []
    for i, (_, system) in enumerate(rows):
        figure = system["metrics"].get(metric)
        if figure is None:
            continue
        xs.append(i + offset)
        heights.append(figure["median"])
        low.append(figure["median"] - figure["min"])
        high.append(figure["max"] - figure["median"])
        colors.append("#1f77b4" if system["name"] == "scoter" else "#999999")
    hatch = None if metric == "drain_1" else "//"
    ax.bar(
        xs,
        heights,
        width,
        yerr=[low, high],
        capsize=3,
        color=colors,
        hatch=hatch,
        label=label,
        edgecolor="black",
        linewidth=0.5,
    )


def _label(key: str) -> str:
    name, _, backend = key.rpartition("-")
    return f"{name}\n({backend})"
