"""What consumers and producers import: each peer's app with one no-op task that records its
completion (`bench.counter`), and how to enqueue it one at a time and in bulk.

Every module reads its places from the environment (`bench.settings`), so that the consumer
command a user copies from the output runs as it did in the benchmark. Each defines
`enqueue_one()` and, where the peer has a bulk API, `enqueue_bulk(n)`.
"""
