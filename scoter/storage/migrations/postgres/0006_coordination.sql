-- scoter's PostgreSQL schema, version 6: unique keys, locks, and concurrency and rate limits.
-- `unique_key`: a task holds its key while scheduled, queued or running (see
-- Storage.enqueue_unique); concurrent enqueues of one key take turns on an advisory lock. A
-- lock is held while its `expires` has not passed and, when taken under a task's lease
-- (`task_id`, `lease_token`), while that task runs with that token and its lease has not
-- expired. `limits`: each limited task name's limits; `starts`: the claims of each
-- rate-limited name (and the uses of each take_rate key, '@' and the key) in its window.
-- A column without a default is added without rewriting the table.

ALTER TABLE {schema}.tasks ADD COLUMN unique_key text;
CREATE INDEX tasks_unique ON {schema}.tasks (unique_key) WHERE unique_key IS NOT NULL;

CREATE TABLE {schema}.locks (
    name text PRIMARY KEY,
    owner text NOT NULL,
    task_id text,
    lease_token text,
    expires timestamptz,
    holder text NOT NULL,
    acquired_at timestamptz NOT NULL
);

CREATE TABLE {schema}.limits (
    name text PRIMARY KEY,
    concurrency integer,
    rate integer,
    per float8,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE {schema}.starts (
    key text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX starts_key ON {schema}.starts (key, at);
