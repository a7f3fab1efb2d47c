"""The name charset: task and queue names and task ids are checked where they enter
(registration, enqueue, a consumer's queues), with an error that says what to write."""

from __future__ import annotations

import uuid

import pytest

from scoter import Message, Scoter
from scoter.task import check_id, check_name

GOOD_NAMES = [
    "default", "add", "app.add", "billing.tasks.send_invoice", "mail:high", "tenant/42",
    "chaos-1a2b3c4d", "résumé", "日本", "a" * 200,
]  # fmt: skip
BAD_NAMES = [
    "", "a b", "x}:t:y", "{q}", "report[/]", "a\nb", "<lambda>", "a\x1b[2J", "a" * 201, "é\u0301",
]  # fmt: skip
GOOD_IDS = [uuid.uuid4().hex, str(uuid.uuid4()), "invoice-2024-0042", "crashed-7", "a:b.c_d"]
BAD_IDS = ["", "y}:ready", "a b", "日本", "id\n", "a/b", "x" * 201]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_usual_names_pass(name: str) -> None:
    assert check_name("queue", name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_outside_the_charset_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match=r"bad queue name .*: use 1 to 200 letters, digits"):
        check_name("queue", name)


@pytest.mark.parametrize("task_id", GOOD_IDS)
def test_usual_ids_pass(task_id: str) -> None:
    assert check_id(task_id) == task_id


@pytest.mark.parametrize("task_id", BAD_IDS)
def test_ids_outside_the_charset_are_refused_with_the_rule(task_id: str) -> None:
    with pytest.raises(ValueError, match=r"bad task id .*: use 1 to 200 ASCII letters"):
        check_id(task_id)


def test_registration_checks_the_task_name_and_queue() -> None:
    app = Scoter("names", "memory://")
    with pytest.raises(ValueError, match="bad task name '<lambda>'"):
        app.task(lambda: None)
    with pytest.raises(ValueError, match="bad queue name 'mail high'"):
        app.task(queue="mail high")(len)
    with pytest.raises(ValueError, match="bad task name 'a b'"):
        app.task(name="a b")(len)
    with pytest.raises(ValueError, match=r"bad queue name 'x\}'"):
        Scoter("names", "memory://", default_queue="x}")
    assert app.tasks == {}


def test_enqueue_checks_ids_unknown_names_and_queues_and_stores_nothing_bad() -> None:
    app = Scoter("names", "memory://")

    @app.task
    def work() -> None: ...

    with pytest.raises(ValueError, match="bad task id"):
        work.schedule(id="a b")
    with pytest.raises(ValueError, match="bad task name"):
        app.enqueue_many([Message("other.service.job"), Message("other service")])
    with pytest.raises(ValueError, match="bad queue name"):
        app.enqueue(Message("work", queue="{hot}"))
    assert app.storage.counts() == {}
    assert app.enqueue(Message("other.service.job", id="x-1", queue="mail:high")).id == "x-1"


def test_a_consumer_checks_its_queues() -> None:
    app = Scoter("names", "memory://")
    with pytest.raises(ValueError, match=r"bad queue name 'x\}'"):
        app.consumer(queues=["default", "x}"])
