"""Locks, limits and unique tasks: run `scoter worker examples.coordination:app` (on as many
hosts as you like), then `python -m examples.coordination` to enqueue some of each."""

import os
import time

from scoter import Scoter

app = Scoter("examples")  # sqlite:///examples.db in the working directory, or $SCOTER_URL
LOG = os.environ.get("COORDINATION_LOG", "coordination.log")


def log(line: str) -> None:
    with open(LOG, "a") as out:
        out.write(f"{time.time():.3f} {line}\n")


@app.task(unique=True)
def refresh_dashboard(customer: int) -> None:
    """Enqueued on every change; while one refresh is waiting or running, another is not."""
    log(f"refresh {customer}")


@app.task(concurrency=2)
def transcode(video: str) -> None:
    """Heavy: at most two run at once across every consumer; the others wait queued."""
    log(f"transcode {video} start")
    time.sleep(0.3)
    log(f"transcode {video} end")


@app.task(rate_limit="5/s")
def call_partner_api(order: int) -> None:
    """The partner allows 5 calls a second: at most 5 start in any second, fleet-wide."""
    log(f"call {order}")


@app.task(retries=10, retry_delay=0.5)
def nightly_export() -> None:
    """One export at a time. Held by another, TaskLockedException fails this attempt and the
    retry comes back later; if the holder's consumer dies, its lease frees the lock."""
    with app.lock_task("nightly-export"):
        log("export")
        time.sleep(0.2)


def main() -> None:
    first = refresh_dashboard(42)
    assert refresh_dashboard(42).id == first.id  # the same task, not a second one
    videos = [transcode(f"clip-{n}") for n in range(6)]
    calls = call_partner_api.map([n] for n in range(10))
    exports = [nightly_export() for _ in range(2)]
    for result in [first, *videos, *calls, *exports]:
        result.get(blocking=True, timeout=60)
    print(f"done: see {LOG}")


if __name__ == "__main__":
    main()
