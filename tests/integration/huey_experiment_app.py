"""An unchanged Huey app: run by real `huey_consumer`, or by `scoter huey-consumer` (whose
alias makes `from huey import ...` give scoter.huey). Each finished task writes a row."""

import os
import sqlite3
import time

from huey import SqliteHuey

huey = SqliteHuey("experiment", filename=os.environ["HUEY_EXPERIMENT_DB"])


@huey.task()
def work(n):
    time.sleep(float(os.environ.get("HUEY_EXPERIMENT_SLEEP", "0.5")))
    with sqlite3.connect(os.environ["HUEY_EXPERIMENT_RUNS"], timeout=30) as db:
        db.execute("CREATE TABLE IF NOT EXISTS done (n INTEGER, pid INTEGER)")
        db.execute("INSERT INTO done VALUES (?, ?)", (n, os.getpid()))
    return n
