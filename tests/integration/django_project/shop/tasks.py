"""Found by autodiscovery: native scoter tasks and djhuey tasks of the test project."""

import os
import sqlite3
import time

from scoter.contrib.django import app
from scoter.huey.contrib.djhuey import db_task, on_commit_task
from shop.models import Order


def record(kind, n):
    time.sleep(float(os.environ.get("DJANGO_TASK_SLEEP", "0.4")))
    with sqlite3.connect(os.path.join(os.environ["DJANGO_TEST_DIR"], "runs.db"), timeout=30) as db:
        db.execute("CREATE TABLE IF NOT EXISTS done (kind TEXT, n INTEGER)")
        db.execute("INSERT INTO done VALUES (?, ?)", (kind, n))


@app.task(name="shop.receipt")
def send_receipt(n):
    assert Order.objects.filter(n=n).exists()  # the view's row is committed and visible
    record("scoter", n)


@on_commit_task()
def ship(n):
    assert Order.objects.filter(n=n).exists()
    record("huey", n)


@db_task()
def count_orders():
    return Order.objects.count()
