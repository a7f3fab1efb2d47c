"""The peers, each with its usual consumer command. Per-task logging is off for every system
(scoter's default; a quiet flag for the others), so that logs are not what is measured."""

from __future__ import annotations

from bench.systems.base import Huey, System

HUEY = ("huey_consumer", "bench.apps.huey_app.huey", "-w", "4", "-k", "thread", "-q")
HUEY_PROCESS = ("huey_consumer", "bench.apps.huey_app.huey", "-w", "4", "-k", "process", "-q")

PEERS: list[System] = [
    Huey("huey", "sqlite", "huey_app", "huey", HUEY, "4 threads (-w 4 -k thread)", max_latency=200),
    Huey("huey", "redis", "huey_app", "huey", HUEY, "4 threads (-w 4 -k thread)"),
    Huey(
        "huey",
        "sqlite",
        "huey_app",
        "huey",
        HUEY_PROCESS,
        "4 processes (-w 4 -k process)",
        max_latency=200,
        executor="process",
        groups=("process",),
    ),
    Huey(
        "huey",
        "redis",
        "huey_app",
        "huey",
        HUEY_PROCESS,
        "4 processes (-w 4 -k process)",
        executor="process",
        groups=("process",),
    ),
    System(
        "rq",
        "redis",
        "rq_app",
        "rq",
        ("rq", "worker", "--quiet", "default"),
        "1 job at a time, a forked work horse per job (default Worker)",
        bulk=True,
        max_drain=1000,
        url_variable="RQ_REDIS_URL",
    ),
    System(
        "dramatiq",
        "redis",
        "dramatiq_app",
        "dramatiq",
        ("dramatiq", "bench.apps.dramatiq_app", "--processes", "1"),
        "1 process of 8 threads (default threads, processes limited to 1)",
    ),
    System(
        "celery",
        "redis",
        "celery_app",
        "celery",
        ("celery", "-A", "bench.apps.celery_app", "worker", "--loglevel", "WARNING"),
        "prefork pool, one child per core (default)",
    ),
    System(
        "arq",
        "redis",
        "arq_app",
        "arq",
        ("arq", "bench.apps.arq_app.WorkerSettings"),
        "asyncio, up to 10 jobs at once (default max_jobs)",
        max_drain=5000,
        max_latency=100,
        groups=("default", "asyncio"),
    ),
    System(
        "procrastinate",
        "postgres",
        "procrastinate_app",
        "procrastinate",
        (
            "procrastinate",
            "--app",
            "bench.apps.procrastinate_app.app",
            "worker",
            "--concurrency",
            "4",
        ),
        "4 concurrent jobs (--concurrency 4; the default is 1)",
        bulk=True,
        max_drain=5000,
    ),
]
