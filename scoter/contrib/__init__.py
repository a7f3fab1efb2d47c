"""Integrations with other projects, each imported only when used: `django` (the `django`
extra), `prometheus` (the `metrics` extra) and `otel` (the `otel` extra)."""
