-- scoter's PostgreSQL schema, version 1. "{schema}" is replaced by the storage's schema name.
-- One row per task; `seq` orders tasks of equal priority by age. Times are timestamptz on the
-- server's clock. A task holds its lease while `lease_token` is set (state 'running').

CREATE SEQUENCE {schema}.task_seq;

CREATE TABLE {schema}.tasks (
    id text PRIMARY KEY,
    seq bigint NOT NULL DEFAULT nextval('{schema}.task_seq'),
    name text NOT NULL,
    queue text NOT NULL,
    payload bytea NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    eta timestamptz,
    state text NOT NULL
        CHECK (state IN ('scheduled', 'queued', 'running', 'done', 'dead')),
    max_crashes integer NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    errors integer NOT NULL DEFAULT 0,
    interruptions integer NOT NULL DEFAULT 0,
    crashes integer NOT NULL DEFAULT 0,
    lease_token text,
    consumer text,
    lease_expires timestamptz,
    checkpoint bytea,
    progress integer[],
    result bytea,
    result_expires timestamptz,
    error text,
    reason text,
    history jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

ALTER SEQUENCE {schema}.task_seq OWNED BY {schema}.tasks.seq;

-- Claims: the queued tasks of one queue, highest priority first, then oldest.
CREATE INDEX tasks_ready ON {schema}.tasks (queue, priority DESC, seq) WHERE state = 'queued';
-- Fencing: every write of an attempt finds its row by lease token.
CREATE UNIQUE INDEX tasks_leased ON {schema}.tasks (lease_token) WHERE lease_token IS NOT NULL;
-- The rescuer, the scheduler and result expiry.
CREATE INDEX tasks_expiring ON {schema}.tasks (lease_expires) WHERE state = 'running';
CREATE INDEX tasks_due ON {schema}.tasks (eta) WHERE state = 'scheduled';
CREATE INDEX tasks_results ON {schema}.tasks (result_expires)
    WHERE state = 'done' AND result_expires IS NOT NULL;
