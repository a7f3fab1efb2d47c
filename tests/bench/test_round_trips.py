"""The one-by-one enqueue against bare round trips: the arithmetic of the docs' section."""

from __future__ import annotations

from typing import Any

from bench import docs, metrics


def _system(**medians: float) -> dict[str, Any]:
    return {"metrics": {k: {"median": v} for k, v in medians.items()}}


SYSTEMS = {
    "scoter-redis": _system(enqueue_single=5_000, round_trips=10_000),
    "huey-redis": _system(enqueue_single=4_000, round_trips=12_500),
    "scoter-sqlite": _system(enqueue_single=6_000),
}


def test_each_redis_system_gets_its_time_beyond_a_round_trip() -> None:
    rows = {row["system"]: row for row in metrics.round_trips(SYSTEMS)}
    assert set(rows) == {"scoter-redis", "huey-redis"}  # SQLite has no round trips
    assert rows["scoter-redis"]["extra_us"] == 100.0  # 200 µs a call, 100 µs a round trip
    assert rows["huey-redis"]["extra_us"] == 170.0  # 250 - 80


def test_the_docs_give_what_the_enqueue_target_leaves_beyond_a_round_trip() -> None:
    text = docs._round_trips({"systems": SYSTEMS})
    assert "| scoter-redis | 5,000 | 10,000 | 100.0 |" in text
    # 1.5 x 4,000/s = 6,000/s: 166.7 µs a call, 66.7 µs beyond scoter's 100 µs round trip.
    assert "1.5 x huey-redis's 4,000/s is 166.7 µs a call: 66.7 µs beyond" in text
    assert "where scoter-redis takes 100.0 µs" in text


def test_no_section_without_round_trips() -> None:
    assert docs._round_trips({"systems": {"scoter-sqlite": SYSTEMS["scoter-sqlite"]}}) == ""
