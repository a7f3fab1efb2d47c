"""Where the servers are, and the environment variables that carry a run's places to the
consumer and producer processes (which import `bench.apps.*`)."""

from __future__ import annotations

import os

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
"""A Redis database the suite owns: it is flushed before every measurement."""
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
"""A database to connect to for CREATE DATABASE; each measurement gets a fresh database."""

# Variables read by bench.apps.* and bench.counter inside consumers and producers.
ENV_COUNTER = "BENCH_COUNTER"
"""Where tasks record their completion: redis://…, sqlite:///path or postgresql://…"""
ENV_PREFIX = "BENCH_PREFIX"
"""The measurement's own namespace: the Redis counter's keys (and scoter's) start with it."""
ENV_SCOTER_URL = "BENCH_SCOTER_URL"
ENV_HUEY = "BENCH_HUEY"
"""`sqlite:///path` or a redis:// URL."""
ENV_REDIS = "BENCH_REDIS"
ENV_POSTGRES = "BENCH_POSTGRES"
