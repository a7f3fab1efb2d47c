"""The metrics-on variant rows: run only when named, paired with no peer, and held against
scoter's own row in the same run."""

from __future__ import annotations

from typing import Any

from bench import cli, metrics


def keys(*argv: str) -> list[str]:
    return [s.key for s in cli.selected(cli.parse(list(argv)))]


def test_variant_rows_run_only_when_named_by_family_or_key() -> None:
    assert not [k for k in keys() if "metrics" in k]
    assert not [k for k in keys("--only", "scoter") if "metrics" in k]
    assert keys("--only", "scoter-sqlite,scoter-metrics-sqlite") == [
        "scoter-sqlite", "scoter-metrics-sqlite",
    ]  # fmt: skip
    assert keys("--only", "scoter-metrics", "--backends", "redis") == ["scoter-metrics-redis"]


def _system(name: str, drain: float) -> dict[str, Any]:
    figure = {"median": drain, "min": drain, "max": drain, "samples": [drain]}
    return {"name": name, "backend": "sqlite", "groups": ["metrics"] if "metrics" in name else
            ["default"], "metrics": {"drain_1": figure}}  # fmt: skip


def test_the_overhead_target_is_checked_only_in_a_run_that_measured_it() -> None:
    plain = {"scoter-sqlite": _system("scoter", 10_000.0)}
    assert not [t for t in metrics.check_targets(plain) if "metrics" in t["system"]]
    both = {**plain, "scoter-metrics-sqlite": _system("scoter", 9_600.0)}
    [overhead] = [t for t in metrics.check_targets(both) if "metrics" in t["system"]]
    assert overhead["target"] == "scoter-metrics-sqlite drain_1 ≥ 0.95 x scoter-sqlite"
    assert (overhead["ratio"], overhead["met"]) == (0.96, True)
    assert metrics.ratios(both) == {}  # compared with no peer
