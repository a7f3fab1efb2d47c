"""Expiry and revocation: run `scoter worker examples.expiry:app`, then enqueue from Python."""

import os

from scoter import Scoter, every

app = Scoter("examples")  # sqlite:///examples.db in the working directory, or $SCOTER_URL


@app.task(expires=60)
def remind(user: str) -> None:
    """Not started within a minute of its enqueue, it ends dead `expired` and never runs."""
    with open(os.environ.get("REMIND_LOG", "remind.log"), "a") as log:
        log.write(f"{user}\n")


@app.periodic_task(every(minutes=5), expires=30)
def refresh() -> None:
    """A slot not started within 30 s of its time ends `expired` instead of running late."""
