"""Pipelines and chords: run `scoter worker examples.flows:app` (as many as you like), then
`python -m examples.flows`."""

from scoter import Pipeline, Scoter, TaskFailed, group

app = Scoter("examples")  # sqlite:///examples.db in the working directory, or $SCOTER_URL


@app.task
def fetch(order_id: int) -> dict[str, int]:
    return {"order": order_id, "cents": 1250 * order_id}


@app.task(retries=2, retry_delay=1.0)
def charge(order: dict[str, int], currency: str) -> dict[str, int | str]:
    """Gets fetch's result first, then the argument given to .then()."""
    return {**order, "charged": f"{order['cents'] / 100:.2f} {currency}"}


@app.task
def receipt(order: dict[str, int | str]) -> str:
    return f"order {order['order']}: {order['charged']}"


@app.task
def alert(failure: TaskFailed, order_id: int) -> str:
    """Stored with the death of whichever step of the checkout ended dead."""
    return f"order {order_id} stopped at {failure.task_id}: {failure.reason}"


@app.task
def report(receipts: list[str], title: str) -> str:
    """The chord's callback: every member's result, in the members' order."""
    return "\n".join([title, *receipts])


def checkout(order_id: int) -> Pipeline:
    return fetch.s(order_id).then(charge, "EUR").then(receipt).error(alert, order_id)


if __name__ == "__main__":
    steps = app.enqueue(checkout(1))
    print(steps.get(blocking=True, timeout=30)[-1])  # order 1: 12.50 EUR
    day = app.enqueue(group([checkout(n) for n in range(2, 5)]).then(report, "today"))
    print(day.get(blocking=True, timeout=30))
