-- scoter's PostgreSQL schema, version 3: each periodic schedule's last enqueued slot (whole
-- seconds since the epoch), advanced by compare-and-set in the transaction that enqueues the
-- slot's task (see Storage.enqueue_slot).

CREATE TABLE {schema}.periodic (
    schedule text PRIMARY KEY,
    slot bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
