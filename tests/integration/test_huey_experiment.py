"""The same SIGTERM/SIGKILL experiment on an unchanged Huey app: real `huey_consumer` loses
the tasks its killed consumers were running; `scoter huey-consumer` loses none.

CI runs a short version; SCOTER_LONG=1 runs the one whose numbers docs/from-huey.md quotes.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from huey_fleet import Outcome, run

HUEY_CONSUMER = Path(sys.executable).parent / "huey_consumer"
needs_huey = pytest.mark.skipif(
    not HUEY_CONSUMER.exists() or shutil.which(str(HUEY_CONSUMER)) is None,
    reason="needs the real huey (pip install 'scoter[dev]')",
)
LONG = os.environ.get("SCOTER_LONG") == "1"


def report(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        print(f"{o.system}: {o.tasks} tasks, {o.kills} kills, finished {o.finished}, "
              f"lost {o.lost}, ran again {o.repeated}, {o.seconds} s")  # fmt: skip


@pytest.fixture(autouse=True)
def _path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


@needs_huey
def test_scoter_loses_nothing_where_huey_loses_tasks(tmp_path: Path) -> None:
    (tmp_path / "huey").mkdir()
    (tmp_path / "scoter").mkdir()
    huey = run("huey", tmp_path / "huey", tasks=24, consumers=2, rounds=4, every=0.7)
    scoter = run("scoter", tmp_path / "scoter", tasks=24, consumers=2, rounds=4, every=0.7)
    report([huey, scoter])
    assert scoter.lost == 0, scoter
    assert huey.lost > 0, f"huey lost nothing this time: {huey}"


@pytest.mark.slow
@pytest.mark.skipif(not LONG, reason="a long run: set SCOTER_LONG=1")
@needs_huey
def test_long_experiment(tmp_path: Path) -> None:
    outcomes = []
    for system in ("huey", "scoter"):
        (tmp_path / system).mkdir()
        outcomes.append(run(system, tmp_path / system, tasks=300, consumers=3, rounds=30,
                            every=1.0, deadline_s=300))  # fmt: skip
    report(outcomes)
    assert outcomes[1].lost == 0
