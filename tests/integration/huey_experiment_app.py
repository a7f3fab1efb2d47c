"""An unchanged Huey app: run by real `huey_consumer`, or by `scoter huey-consumer` (whose
alias makes `from huey import ...` give scoter.huey). Each task writes a row when it
starts and one when it finishes."""

import os
import sqlite3
import time

from huey import SqliteHuey

huey = SqliteHuey("experiment", filename=os.environ["HUEY_EXPERIMENT_DB"])


def record(table, n):
    with sqlite3.connect(os.environ["HUEY_EXPERIMENT_RUNS"], timeout=30) as db:
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} (n INTEGER, pid INTEGER)")
        db.execute(f"INSERT INTO {table} VALUES (?, ?)", (n, os.getpid()))


@huey.task()
def work(n):
    record("started", n)
    time.sleep(float(os.environ.get("HUEY_EXPERIMENT_SLEEP", "0.5")))
    record("done", n)
    return n
