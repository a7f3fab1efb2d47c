"""Periodic tasks: run `scoter worker examples.periodic:app` on as many hosts as you like."""

import os

from scoter import Scoter, TaskContext, crontab, every

app = Scoter("examples")  # sqlite:///examples.db in the working directory, or $SCOTER_URL


@app.periodic_task(every(seconds=2), context=True)
def pulse(ctx: TaskContext) -> None:
    """Runs once per 2-second slot, however many consumers run."""
    assert ctx.scheduled_for is not None  # the slot: an aware UTC datetime
    with open(os.environ.get("PULSE_LOG", "pulse.log"), "a") as log:
        log.write(f"{ctx.scheduled_for.isoformat()}\n")


@app.periodic_task(crontab(minute="*/15", hour="9-17", day_of_week="1-5", tz="Europe/Berlin"))
def office_hours_report() -> None:
    """Every quarter hour, 9:00 to 17:45 Berlin time, Monday to Friday."""
