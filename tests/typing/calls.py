"""Checked by mypy in tests/unit/test_typing.py, never run: each line marked `# E: <code>` must
be reported with that error code, and no other line may be."""

from __future__ import annotations

from typing_extensions import assert_type

from scoter import Result, Scoter, TaskContext
from scoter.task import AsyncTask, Task

app = Scoter("typing", "memory://")


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task(retries=2)
async def fetch(url: str) -> bytes:
    return url.encode()


@app.task(context=True)
def count(ctx: TaskContext, n: int) -> int:
    return ctx.attempt + n


@app.task(context=True, queue="slow")
async def acount(ctx: TaskContext, n: int) -> str:
    return str(n)


@app.task(context=True)
def last(n: int, ctx: TaskContext) -> int:  # ctx not first: the call type keeps it
    return n


plain: Task[[int, int], int] = add
assert_type(add(1, 2), Result[int])
coroutine: AsyncTask[[str], bytes] = fetch
not_a_coroutine: Task[[str], bytes] = add  # E: assignment
assert_type(fetch("x"), Result[bytes])
assert_type(fetch("x").get(), bytes | None)
assert_type(count(5), Result[int])
assert_type(acount(5), Result[str])
assert_type(last(5, ctx=None), Result[int])  # E: arg-type
assert_type(add.call_local(1, 2), int)

add(1)  # E: call-arg
add(1, "2")  # E: arg-type
add(1, 2, c=3)  # E: call-arg
count(1, 2)  # E: call-arg
count("5")  # E: arg-type
fetch(b"x")  # E: arg-type
add.s(1)  # E: call-arg
add.with_options(delay=10)(1, 2)
add.with_options(delay=10)(1, "2")  # E: arg-type
fetch.with_options(priority=5)(url="x")
app.enqueue_many([add.s(1, 2), add.s("1", 2)])  # E: arg-type
add.with_options(dlay=10)  # E: call-arg


async def awaited() -> bytes:
    return await fetch.call_local("x")
