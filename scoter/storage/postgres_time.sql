-- name: revoke
-- Scheduled or queued → dead `revoked`; running → a record in revocations for its consumer.
-- Records of tasks that ended or were enqueued anew since are deleted on the way (`stale`:
-- PostgreSQL runs a data-modifying WITH whether or not the query reads it).
WITH picked AS MATERIALIZED (
    SELECT id, state, created_at FROM {schema}.tasks
    WHERE id = ANY(%(ids)s::text[]) AND state IN ('scheduled', 'queued', 'running')
    ORDER BY id
    FOR UPDATE
),
ended AS (
    UPDATE {schema}.tasks t
    SET state = 'dead', reason = 'revoked', error = 'revoked while ' || p.state,
        history = {history} || jsonb_build_object('attempt', t.attempts, 'outcome', 'revoked',
            'at', extract(epoch FROM clock_timestamp()), 'detail', 'revoked while ' || p.state),
        updated_at = clock_timestamp()
    FROM picked p
    WHERE t.id = p.id AND p.state IN ('scheduled', 'queued')
    RETURNING t.id
),
marked AS (
    INSERT INTO {schema}.revocations (kind, key, created_at)
    SELECT 'id', id, created_at FROM picked WHERE state = 'running'
    ON CONFLICT (kind, key) DO UPDATE SET created_at = excluded.created_at
    RETURNING key
),
stale AS (
    DELETE FROM {schema}.revocations r
    WHERE r.kind = 'id' AND r.key <> ALL(%(ids)s::text[]) AND NOT EXISTS (
        SELECT 1 FROM {schema}.tasks t
        WHERE t.id = r.key AND t.created_at = r.created_at
            AND t.state IN ('scheduled', 'queued', 'running'))
    RETURNING r.key
)
SELECT id, state FROM picked
WHERE id IN (SELECT id FROM ended) OR id IN (SELECT key FROM marked);

-- name: restore
WITH requeued AS (
    UPDATE {schema}.tasks
    SET state = CASE WHEN eta > clock_timestamp() THEN 'scheduled' ELSE 'queued' END,
        reason = NULL, error = NULL, updated_at = clock_timestamp()
    WHERE id = ANY(%(ids)s::text[]) AND state = 'dead' AND reason = 'revoked'
    RETURNING id, queue, state
),
forgotten AS (
    DELETE FROM {schema}.revocations WHERE kind = 'id' AND key = ANY(%(ids)s::text[])
    RETURNING key
),
woken AS (
    SELECT pg_notify(%(channel)s, queue)
    FROM (SELECT DISTINCT queue FROM requeued WHERE state = 'queued') q
)
SELECT (SELECT count(*) FROM (SELECT id FROM requeued UNION SELECT key FROM forgotten) u),
       (SELECT count(*) FROM woken);

-- name: forget_revocation
DELETE FROM {schema}.revocations WHERE kind = 'id' AND key = %(id)s;

-- name: revoke_task
INSERT INTO {schema}.revocations (kind, key, until, once)
VALUES ('task', %(name)s, %(until)s, %(once)s)
ON CONFLICT (kind, key) DO UPDATE SET until = excluded.until, once = excluded.once;

-- name: restore_task
DELETE FROM {schema}.revocations WHERE kind = 'task' AND key = %(name)s;

-- name: take_revocation
DELETE FROM {schema}.revocations WHERE kind = 'task' AND key = %(name)s AND once;

-- name: revocations
SELECT r.kind, r.key, r.until, r.once FROM {schema}.revocations r
WHERE r.kind = 'task' OR EXISTS (
    SELECT 1 FROM {schema}.tasks t
    WHERE t.id = r.key AND t.created_at = r.created_at
        AND t.state IN ('scheduled', 'queued', 'running')
);

-- name: next_eta
-- The due index in eta order; an infinite eta (a corrupt record) is never the next.
SELECT extract(epoch FROM eta - clock_timestamp())::float8 FROM {schema}.tasks
WHERE state = 'scheduled' AND eta > '-infinity' AND eta < 'infinity'
ORDER BY eta LIMIT 1;
