"""Integrations with other projects, each imported only when used: `prometheus` (the `metrics`
extra) and `otel` (the `otel` extra)."""
