"""The executor rows: which peer each scoter row is divided by, the targets they are held
against, and the docs page a results file with them renders to."""

from __future__ import annotations

from typing import Any

from bench import cli, docs, metrics
from bench.systems import SYSTEMS

BY_KEY = {s.key: s for s in SYSTEMS}


def _entry(key: str, drain: float) -> dict[str, Any]:
    system = BY_KEY[key]
    return {
        "name": system.name,
        "backend": system.backend,
        "executor": system.executor,
        "groups": list(system.groups),
        "version": "1.0",
        "concurrency": system.concurrency,
        "sizes": {"drain": 100, "latency": 10},
        "skipped": None,
        "errors": [],
        "commands": {"drain_1": "1 x " + " ".join(system.consumer)},
        "metrics": {"drain_1": {"median": drain, "min": drain, "max": drain, "samples": [drain]}},
    }


DRAINS = {
    "scoter-sqlite": 9000.0,
    "huey-sqlite": 3000.0,
    "scoter-process-sqlite": 3000.0,
    "huey-process-sqlite": 1000.0,
    "scoter-asyncio-sqlite": 4000.0,
    "scoter-redis": 9000.0,
    "huey-redis": 3000.0,
    "scoter-process-redis": 2000.0,
    "huey-process-redis": 5000.0,
    "scoter-asyncio-redis": 4000.0,
    "arq-redis": 200.0,
}


def _results() -> dict[str, Any]:
    systems = {key: _entry(key, drain) for key, drain in DRAINS.items()}
    return {
        "started": "2026-12-05T10:00:00+00:00",
        "runs": 1,
        "duration_s": 60.0,
        "sizes": {"drain": 100, "latency": 10, "chunk": 10, "idle_s": 1.0},
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "memory_gib": 1.0,
            "kernel": "6",
            "python": "3.11",
            "sqlite": "3",
            "redis": "7",
            "postgresql": "15",
            "packages": {},
            "scoter_commit": "abc",
        },
        "systems": systems,
        "ratios": metrics.ratios(systems),
        "targets": metrics.check_targets(systems),
    }


def test_each_executor_row_is_divided_by_the_peers_consumer_of_its_kind_only() -> None:
    ratios = _results()["ratios"]
    assert set(ratios["scoter-process-sqlite"]) == {"huey-process-sqlite"}
    assert set(ratios["scoter-process-redis"]) == {"huey-process-redis"}
    assert set(ratios["scoter-asyncio-redis"]) == {"arq-redis"}
    assert "scoter-asyncio-sqlite" not in ratios  # no asyncio peer on SQLite
    # the usual consumers are compared as before, never with the peers' process workers
    assert set(ratios["scoter-sqlite"]) == {"huey-sqlite"}
    assert set(ratios["scoter-redis"]) == {"huey-redis", "arq-redis"}
    assert ratios["scoter-asyncio-redis"]["arq-redis"]["drain_1"] == 20.0


def test_the_process_executor_is_held_to_1_5_times_hueys_process_workers() -> None:
    targets = {t["target"]: t for t in _results()["targets"]}
    sqlite = targets["scoter-process-sqlite drain_1 ≥ 1.5 x huey-process-sqlite"]
    assert (sqlite["ratio"], sqlite["met"]) == (3.0, True)
    redis = targets["scoter-process-redis drain_1 ≥ 1.5 x huey-process-redis"]
    assert (redis["ratio"], redis["met"]) == (0.4, False)
    assert not [t for t in targets if "asyncio" in t]  # no target: the ratio is reported


def test_the_docs_page_gains_the_executor_rows_and_says_how_they_are_paired() -> None:
    page = docs.render(_results(), None)
    assert "| scoter-process-redis | huey-process-redis | - | - | 0.40 |" in page
    assert "| scoter-asyncio-redis | arq-redis | - | - | 20.00 |" in page
    assert "| scoter-asyncio-sqlite | - | - | 4,000 |" in page
    assert "| scoter-process-sqlite drain_1 ≥ 1.5 x huey-process-sqlite | 3,000.00 |" in page
    assert "## Executors" in page and "No\n  target is set" in page
    assert "scoter worker bench.apps.scoter_asyncio_app:app -w 10 -k asyncio -q" in page


def test_a_page_without_executor_rows_has_no_executor_section() -> None:
    results = _results()
    results["systems"] = {k: v for k, v in results["systems"].items() if not v["executor"]}
    assert "## Executors" not in docs.render(results, None)


def test_only_selects_a_family_by_name_and_executor() -> None:
    keys = {s.key for s in cli.selected(cli.parse(["--only", "scoter-process,huey-process"]))}
    assert keys == {
        "scoter-process-sqlite",
        "scoter-process-redis",
        "huey-process-sqlite",
        "huey-process-redis",
    }
    scoter = {s.key for s in cli.selected(cli.parse(["--only", "scoter", "--backends", "redis"]))}
    assert scoter == {"scoter-redis", "scoter-process-redis", "scoter-asyncio-redis"}
