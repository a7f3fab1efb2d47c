"""What `scoter worker` shows besides running tasks: its log format, Prometheus metrics and
health endpoints. Their options, and the set-up it makes from them."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scoter.display import JsonFormatter, LineFormatter
from scoter.exceptions import ConfigurationError

if TYPE_CHECKING:
    from scoter.consumer.supervisor import Consumer

log = logging.getLogger("scoter.consumer")

F = TypeVar("F", bound=Callable[..., Any])
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PORT = click.IntRange(0, 65535)

OPTIONS = [
    click.option(
        "--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True,
        envvar="SCOTER_LOG_FORMAT",
        help="json: one JSON object per line, with each task event's fields. $SCOTER_LOG_FORMAT",
    ),
    click.option(
        "--metrics-port", type=PORT, default=None, envvar="SCOTER_METRICS_PORT",
        help="Serve Prometheus metrics at /metrics on this port (0: any free one; needs "
        "scoter[metrics]). $SCOTER_METRICS_PORT",
    ),
    click.option(
        "--metrics-host", default="127.0.0.1", show_default=True, envvar="SCOTER_METRICS_HOST",
        help="Address the metrics listen on (0.0.0.0: every interface). $SCOTER_METRICS_HOST",
    ),
    click.option(
        "--health-port", type=PORT, default=None, envvar="SCOTER_HEALTH_PORT",
        help="Serve /livez and /readyz on this port (0: any free one). $SCOTER_HEALTH_PORT",
    ),
    click.option(
        "--health-host", default="127.0.0.1", show_default=True, envvar="SCOTER_HEALTH_HOST",
        help="Address the health endpoints listen on. $SCOTER_HEALTH_HOST",
    ),
]  # fmt: skip


def options(fn: F) -> F:
    """Add the options above to a click command."""
    return functools.reduce(lambda f, option: option(f), reversed(OPTIONS), fn)


def configure_logging(level: int, log_format: str) -> None:
    """Log to stderr at `level`, as text lines or JSON objects."""
    handler = logging.StreamHandler()
    json_lines = log_format == "json"
    handler.setFormatter(JsonFormatter() if json_lines else LineFormatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


def serve(
    consumer: Consumer,
    *,
    metrics_port: int | None,
    metrics_host: str,
    health_port: int | None,
    health_host: str,
) -> None:
    """Start the metrics and health servers asked for; raises ConfigurationError when one
    cannot listen or its extra is missing."""
    if metrics_port is not None:
        from scoter.contrib.prometheus import Metrics

        metrics = Metrics(consumer)
        host, port = _listen(metrics.serve, metrics_host, metrics_port, "--metrics-port")
        log.info("metrics on http://%s:%d/metrics", host, port)
    if health_port is not None:
        from scoter.consumer.health import Health

        health = Health(consumer)
        host, port = _listen(health.serve, health_host, health_port, "--health-port")
        log.info("health on http://%s:%d/livez and /readyz", host, port)


def _listen(
    serve: Callable[[str, int], tuple[str, int]], host: str, port: int, option: str
) -> tuple[str, int]:
    try:
        return serve(host, port)
    except OSError as exc:
        raise ConfigurationError(
            f"{option}: cannot listen on {host}:{port}: {exc.strerror or exc}; choose another "
            "port (0: any free one) or host"
        ) from exc
