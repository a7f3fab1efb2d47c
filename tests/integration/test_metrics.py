"""`scoter worker --metrics-port`: Prometheus metrics scraped from a real process-executor
worker, after a run with successes, an error, a SIGKILLed child and a SIGTERM drain that
interrupts a task; each counter at its value, counted by the parent."""

from __future__ import annotations

import re
import signal
import time
import urllib.request

import pytest
from conftest import Env, Worker

from scoter.states import State

prometheus = pytest.importorskip("prometheus_client.parser")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in prometheus.text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def tasks(samples: Samples, task: str, outcome: str) -> float:
    return value(samples, "scoter_tasks_total", queue="default", task=task, outcome=outcome)


def metrics_url(worker: Worker) -> str:
    found = re.search(r"metrics on (http://\S+/metrics)", worker.log())
    assert found, worker.log()
    return found[1]


def test_a_process_workers_counters_after_errors_crashes_and_a_drain(env: Env) -> None:
    worker = env.start("-k", "process", "-w", "2", "--drain-timeout", "6", "--metrics-port", "0")
    url = metrics_url(worker)
    m = env.module
    done = [m.sleepy(0.0) for _ in range(3)]
    failed = m.fail()  # retries=2: three errors, two retries, then dead
    crashed = m.crash()  # SIGKILLs its child; max_crashes=2: two crashes, then dead
    for result in (*done, failed, crashed):
        env.wait_for(lambda r=result: env.state(r.id) in (State.DONE, State.DEAD), 40, "settled")

    samples = scrape(url)
    assert tasks(samples, "sleepy", "succeeded") == 3
    assert value(samples, "scoter_task_duration_seconds_count", queue="default", task="sleepy") == 3
    assert (tasks(samples, "fail", "error"), tasks(samples, "fail", "retried")) == (3, 2)
    assert tasks(samples, "fail", "dead") == 1
    assert (tasks(samples, "crash", "crashed"), tasks(samples, "crash", "dead")) == (2, 1)
    assert tasks(samples, "crash", "succeeded") == 0
    assert value(samples, "scoter_queue_tasks", queue="default", state="done") == 3
    assert value(samples, "scoter_queue_tasks", queue="default", state="dead") == 2
    assert value(samples, "scoter_workers", state="idle") == 2
    assert value(samples, "scoter_fenced_writes_refused_total") == 0
    assert value(samples, "scoter_heartbeat_lag_seconds") < 30

    started = len(env.runs("started"))
    polite = m.polite(30.0)  # hands itself back when asked to stop
    stubborn = m.sleepy(30.0)  # does not: released when the drain deadline kills its child
    env.wait_for(lambda: len(env.runs("started")) == started + 2, 20, "the long tasks to start")
    assert value(scrape(url), "scoter_workers", state="busy") == 2
    worker.send(signal.SIGTERM)  # stop requests 2 s before the 6 s deadline
    seen = _scrape_until_interrupted(url)
    assert tasks(seen, "polite", "interrupted") == 1
    assert tasks(seen, "sleepy", "interrupted") == 0  # still draining
    assert worker.wait(timeout=15) == 0
    assert "2 interrupted" in worker.log().splitlines()[-1]
    assert env.state(polite.id) is State.QUEUED and env.state(stubborn.id) is State.QUEUED


def _scrape_until_interrupted(url: str) -> Samples:
    """Scrape the draining worker until the polite task's interruption is counted."""
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        samples = scrape(url)
        if tasks(samples, "polite", "interrupted"):
            return samples
        time.sleep(0.1)
    raise AssertionError("the interruption was never counted")


def test_a_port_in_use_is_a_configuration_error(env: Env) -> None:
    first = env.start("--metrics-port", "0")
    port = metrics_url(first).rsplit(":", 1)[1].split("/")[0]
    second = env.start("--metrics-port", port, ready=False)
    assert second.wait(timeout=15) == 3
    assert f"--metrics-port: cannot listen on 127.0.0.1:{port}" in second.log()
