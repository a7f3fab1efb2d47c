-- scoter's PostgreSQL schema, version 5: revocations. Kind 'task', key a task name: every task
-- of that name that a consumer claims is revoked, until `until` (seconds since the epoch on the
-- revoking caller's clock; NULL: until restored), or only the next one (`once`). Kind 'id', key
-- a task id: a task revoked while it ran; `created_at` is the task's as it was then, so that a
-- later re-enqueue of the id (which sets a new one) is not revoked.

CREATE TABLE {schema}.revocations (
    kind text NOT NULL CHECK (kind IN ('task', 'id')),
    key text NOT NULL,
    until float8,
    once boolean NOT NULL DEFAULT false,
    created_at timestamptz,
    PRIMARY KEY (kind, key)
);
