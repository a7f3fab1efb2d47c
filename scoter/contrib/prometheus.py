"""Prometheus metrics of a consumer (the `metrics` extra: `pip install 'scoter[metrics]'`).

`scoter worker APP --metrics-port 9808` serves them; in code::

    consumer = app.consumer(workers=8)
    Metrics(consumer).serve("0.0.0.0", 9808)
    consumer.run()

- `scoter_tasks_total{queue, task, outcome}`: attempts and tasks by how they ended
  (`OUTCOMES`: succeeded, error, retried, interrupted, crashed, dead, lease_lost, ...);
- `scoter_task_duration_seconds{queue, task}`: histogram of the seconds a task's code ran,
  for attempts that returned or raised;
- `scoter_queue_tasks{queue, state}`: tasks in the storage, read at most every
  `queue_refresh` seconds however often scraped;
- `scoter_workers{state}`: busy (running an attempt) and idle worker slots of this consumer;
- `scoter_claimed_tasks`: tasks it holds: running, waiting for a worker, being settled;
- `scoter_heartbeat_lag_seconds`: seconds since its heartbeat last renewed its leases;
- `scoter_fenced_writes_refused_total`: settling writes refused because the attempt had lost
  its lease (DESIGN G3);
- `scoter_storage_errors_total`: failed storage calls this process retried or went on from.

Outcomes are counted where they are settled: with the process executor, in the parent, so its
children need no registry of their own and every count is the consumer's. The queue counts
are the storage's, the same from every consumer: aggregate them with `max`, not `sum`.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from types import ModuleType
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from scoter.consumer.events import ERROR, OUTCOMES, SUCCEEDED, TaskEvent
from scoter.exceptions import ConfigurationError
from scoter.states import State
from scoter.storage import outages

if TYPE_CHECKING:
    from scoter.consumer.supervisor import Consumer

QUEUE_REFRESH_S = 5.0
"""Least seconds between two reads of the queue counts, however often scraped."""
DURATION_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 3600.0, float("inf"),
)  # fmt: skip


def client() -> ModuleType:
    """prometheus_client, or a ConfigurationError saying how to install it."""
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError as exc:
        raise ConfigurationError(
            f"metrics need the prometheus_client package: pip install 'scoter[metrics]' ({exc})"
        ) from exc
    return prometheus_client


class Metrics:
    """Counts a consumer's task outcomes and exposes them, with its state, to Prometheus.

    Outcomes are tallied here under one lock (a dictionary increment and a bucket search per
    event) and turned into metric families only when scraped: cheaper per task than
    prometheus_client's own counters and histograms, which lock per series and per bucket.
    """

    kinds = frozenset(OUTCOMES)

    def __init__(
        self, consumer: Consumer, *, registry: Any = None, queue_refresh: float = QUEUE_REFRESH_S
    ) -> None:
        """Observes `consumer`'s events from now on.

        :param registry: a prometheus_client CollectorRegistry; default a new one of its own.
        :param queue_refresh: least seconds between two reads of the queue counts.
        """
        self.registry = client().CollectorRegistry() if registry is None else registry
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}
        self._durations: dict[tuple[str, str], list[float]] = {}
        """Per (queue, task): a count per bucket (not cumulative), then the sum."""
        self.registry.register(_Outcomes(self))
        self.registry.register(_ConsumerState(consumer, queue_refresh))
        consumer.events.add(self)

    def observe(self, event: TaskEvent) -> None:
        key = (event.queue, event.name, event.kind)
        duration = event.duration
        timed = duration is not None and event.kind in (SUCCEEDED, ERROR)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            if timed:
                assert duration is not None
                series = self._durations.get(key[:2])
                if series is None:
                    series = self._durations[key[:2]] = [0.0] * (len(DURATION_BUCKETS) + 1)
                series[bisect.bisect_left(DURATION_BUCKETS, duration)] += 1
                series[-1] += duration

    def snapshot(
        self,
    ) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str], list[float]]]:
        """Copies of the outcome counts and duration buckets."""
        with self._lock:
            return dict(self._counts), {k: list(v) for k, v in self._durations.items()}

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve /metrics on host:port (0: any free port) from daemon threads; returns the
        address listened on."""
        app = client().make_wsgi_app(self.registry)
        server = make_server(host, port, app, _Server, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, name="scoter-metrics", daemon=True).start()
        address = server.server_address
        return str(address[0]), int(address[1])


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


class _Outcomes:
    """scoter_tasks_total and scoter_task_duration_seconds, from the tally at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        families = client().core
        counts, durations = self.metrics.snapshot()
        tasks = families.CounterMetricFamily(
            "scoter_tasks", "Attempts and tasks by how they ended.",
            labels=["queue", "task", "outcome"],
        )  # fmt: skip
        for key, count in sorted(counts.items()):
            tasks.add_metric(list(key), count)
        yield tasks
        histogram = families.HistogramMetricFamily(
            "scoter_task_duration_seconds", "Seconds a task's code ran (returned or raised).",
            labels=["queue", "task"],
        )  # fmt: skip
        for labels, series in sorted(durations.items()):
            cumulative = list(itertools.accumulate(series[:-1]))
            buckets = [(_bound(b), n) for b, n in zip(DURATION_BUCKETS, cumulative, strict=True)]
            histogram.add_metric(list(labels), buckets, series[-1])
        yield histogram


def _bound(bucket: float) -> str:
    return "+Inf" if bucket == float("inf") else repr(bucket)


class _ConsumerState:
    """What is read at scrape time: the queue counts (cached), workers, heartbeat, refusals."""

    def __init__(self, consumer: Consumer, refresh: float) -> None:
        self.consumer = consumer
        self.refresh = refresh
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, State], int] = {}
        self._read_at = -refresh

    def describe(self) -> Iterator[Any]:
        """The families without their samples: registering reads no storage."""
        return self._families()

    def collect(self) -> Iterator[Any]:
        return self._families(self._queue_counts())

    def _families(self, counts: dict[tuple[str, State], int] | None = None) -> Iterator[Any]:
        metrics = client().core
        consumer = self.consumer
        queues = metrics.GaugeMetricFamily(
            "scoter_queue_tasks", "Tasks in the storage per queue and state.",
            labels=["queue", "state"],
        )  # fmt: skip
        for queue in sorted({q for q, _ in counts or {}} | set(consumer.queues)):
            for state in State:
                queues.add_metric([queue, state.value], (counts or {}).get((queue, state), 0))
        yield queues
        busy = sum(ctx.running for ctx in consumer.inflight.contexts())
        workers = metrics.GaugeMetricFamily(
            "scoter_workers", "Worker slots of this consumer, busy or idle.", labels=["state"]
        )
        workers.add_metric(["busy"], busy)
        workers.add_metric(["idle"], max(0, consumer.workers - busy))
        yield workers
        yield metrics.GaugeMetricFamily(
            "scoter_claimed_tasks", "Tasks this consumer holds: running, waiting, settling.",
            value=len(consumer.inflight),
        )  # fmt: skip
        yield metrics.GaugeMetricFamily(
            "scoter_heartbeat_lag_seconds",
            "Seconds since the heartbeat last renewed this consumer's leases.",
            value=max(0.0, time.monotonic() - consumer.heartbeat.ok_at),
        )
        yield metrics.CounterMetricFamily(
            "scoter_fenced_writes_refused",
            "Settling writes refused because the attempt had lost its lease.",
            value=consumer.policy.stale_writes,
        )
        yield metrics.CounterMetricFamily(
            "scoter_storage_errors", "Failed storage calls this process retried or went on from.",
            value=outages.ERRORS.value,
        )  # fmt: skip

    def _queue_counts(self) -> dict[tuple[str, State], int]:
        with self._lock:  # concurrent scrapes share one read
            if time.monotonic() - self._read_at >= self.refresh:
                try:
                    self._counts = self.consumer.storage.counts()
                except Exception:  # an outage: the last counts stand
                    outages.ERRORS.add()
                self._read_at = time.monotonic()
            return self._counts
