-- name: lock_held
-- Whether lock row `l` is held now. Rendered into the statements that name {lock_held}.
(l.expires IS NULL OR l.expires >= clock_timestamp()) AND (l.task_id IS NULL OR EXISTS (
    SELECT 1 FROM {schema}.tasks t
    WHERE t.lease_token = l.lease_token AND t.id = l.task_id
      AND t.lease_expires >= clock_timestamp()))

-- name: unique_lock
-- Concurrent enqueues of one unique key take turns (the keys come sorted: no deadlock).
SELECT pg_advisory_xact_lock(hashtextextended(%(prefix)s || k, 0))
FROM unnest(%(keys)s::text[]) AS k;

-- name: unique_holders
SELECT DISTINCT ON (unique_key) unique_key, id FROM {schema}.tasks
WHERE unique_key = ANY(%(keys)s::text[]) AND state IN ('scheduled', 'queued', 'running');

-- name: unique_set
UPDATE {schema}.tasks SET unique_key = %(key)s WHERE id = %(id)s;

-- name: lock_acquire
-- Taken when free, or held by no one any more; under a lease only while that lease lives.
INSERT INTO {schema}.locks AS l (name, owner, task_id, lease_token, expires, holder, acquired_at)
SELECT %(name)s, %(owner)s, %(task_id)s, %(lease_token)s,
       clock_timestamp() + make_interval(secs => %(ttl)s::float8), %(holder)s, clock_timestamp()
WHERE %(task_id)s::text IS NULL OR EXISTS (
    SELECT 1 FROM {schema}.tasks t
    WHERE t.lease_token = %(lease_token)s AND t.id = %(task_id)s
      AND t.lease_expires >= clock_timestamp())
ON CONFLICT (name) DO UPDATE SET
    owner = excluded.owner, task_id = excluded.task_id, lease_token = excluded.lease_token,
    expires = excluded.expires, holder = excluded.holder, acquired_at = excluded.acquired_at
WHERE NOT ({lock_held});

-- name: lock_renew
UPDATE {schema}.locks AS l SET expires = clock_timestamp() + make_interval(secs => %(ttl)s)
WHERE name = %(name)s AND owner = %(owner)s AND {lock_held};

-- name: lock_release
DELETE FROM {schema}.locks AS l WHERE name = %(name)s AND owner = %(owner)s
RETURNING {lock_held};

-- name: locks_held
SELECT l.name, l.holder, l.task_id, extract(epoch FROM l.expires)::float8,
       extract(epoch FROM l.acquired_at)::float8, extract(epoch FROM t.lease_expires)::float8
FROM {schema}.locks AS l
LEFT JOIN {schema}.tasks t ON t.lease_token = l.lease_token AND t.id = l.task_id
WHERE (%(names)s::text[] IS NULL OR l.name = ANY(%(names)s::text[])) AND {lock_held}
ORDER BY l.name;

-- name: locks_flush
WITH gone AS (
    DELETE FROM {schema}.locks AS l
    WHERE %(names)s::text[] IS NULL OR l.name = ANY(%(names)s::text[])
    RETURNING l.name, {lock_held} AS held
)
SELECT name FROM gone WHERE held ORDER BY name;

-- name: limits_any
SELECT EXISTS (SELECT 1 FROM {schema}.limits);

-- name: limits_set
-- Each name's limits stored, or removed when it has none.
WITH given AS (
    SELECT * FROM unnest(%(names)s::text[], %(concurrency)s::integer[], %(rate)s::integer[],
                         %(per)s::float8[]) AS g(name, concurrency, rate, per)
),
removed AS (
    DELETE FROM {schema}.limits l USING given g
    WHERE l.name = g.name AND g.concurrency IS NULL AND g.rate IS NULL
)
INSERT INTO {schema}.limits AS l (name, concurrency, rate, per)
SELECT name, concurrency, rate, per FROM given WHERE concurrency IS NOT NULL OR rate IS NOT NULL
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, rate = excluded.rate,
    per = excluded.per, updated_at = clock_timestamp();

-- name: limit_states
-- Each limit (of %(names)s, or all when NULL): its tasks running now (through the running
-- tasks' index), its claims in its window, and the oldest of those.
SELECT l.name, l.concurrency, l.rate, l.per,
       (SELECT count(*) FROM {schema}.tasks t WHERE t.state = 'running' AND t.name = l.name),
       (SELECT count(*) FROM {schema}.starts s
        WHERE s.key = l.name AND s.at > clock_timestamp() - make_interval(secs => l.per)),
       (SELECT extract(epoch FROM min(s.at))::float8 FROM {schema}.starts s
        WHERE s.key = l.name AND s.at > clock_timestamp() - make_interval(secs => l.per))
FROM {schema}.limits l
WHERE %(names)s::text[] IS NULL OR l.name = ANY(%(names)s::text[])
ORDER BY l.name;

-- name: limits_lock
-- A claim under limits holds every limit's row until it commits: such claims take turns, so
-- that each counts the tasks the others claimed. (A statement of its own: the statements after
-- it see what was committed while it waited, which the rest of one statement would not.)
SELECT name FROM {schema}.limits ORDER BY name FOR UPDATE;

-- name: claimable
-- Per queue, the first %(n)s queued tasks by priority then age whose name is not in %(full)s
-- and whose id is not in %(picked)s, skipping rows other claims hold; the first of those:
-- the candidates of a claim under limits.
SELECT c.id, c.name
FROM unnest(%(queues)s::text[]) AS q(name)
CROSS JOIN LATERAL (
    SELECT id, name, priority, seq FROM {schema}.tasks
    WHERE state = 'queued' AND queue = q.name
      AND NOT name = ANY(%(full)s::text[]) AND NOT id = ANY(%(picked)s::text[])
    ORDER BY priority DESC, seq
    LIMIT %(n)s
    FOR UPDATE SKIP LOCKED
) c
ORDER BY c.priority DESC, c.seq
LIMIT %(n)s;

-- name: claim_ids
-- The claim of the tasks a claim under limits chose (%(ids)s), as `claim` leases; a start
-- counted for each of a rate-limited name (%(rated)s), the windows' older ones gone.
WITH claimed AS (
    UPDATE {schema}.tasks t
    SET state = 'running', lease_token = gen_random_uuid()::text, consumer = %(consumer)s,
        lease_expires = clock_timestamp() + make_interval(secs => %(lease)s),
        attempts = CASE WHEN t.attempts < 2147483647 THEN t.attempts + 1 ELSE t.attempts END,
        alone = false, updated_at = clock_timestamp()
    WHERE t.id = ANY(%(ids)s::text[]) AND t.state = 'queued'
    RETURNING t.lease_token, t.id, t.name, t.queue, t.payload,
              extract(epoch FROM t.lease_expires)::float8, t.attempts, t.errors,
              t.interruptions, t.crashes, t.checkpoint, t.suspect, t.priority, t.max_crashes,
              t.seq
),
pruned AS (
    DELETE FROM {schema}.starts s USING {schema}.limits l
    WHERE s.key = l.name AND l.name = ANY(%(rated)s::text[])
      AND s.at <= clock_timestamp() - make_interval(secs => l.per)
),
started AS (
    INSERT INTO {schema}.starts (key, at)
    SELECT name, clock_timestamp() FROM claimed WHERE name = ANY(%(rated)s::text[])
)
SELECT * FROM claimed;

-- name: rate_reset
DELETE FROM {schema}.starts WHERE key = %(key)s;

-- name: rate_take
-- take_rate, after unique_lock for the key: one use counted unless %(limit)s were in the window.
WITH pruned AS (
    DELETE FROM {schema}.starts
    WHERE key = %(key)s AND at <= clock_timestamp() - make_interval(secs => %(per)s)
),
counted AS (
    SELECT count(*) AS n FROM {schema}.starts
    WHERE key = %(key)s AND at > clock_timestamp() - make_interval(secs => %(per)s)
)
INSERT INTO {schema}.starts (key, at)
SELECT %(key)s, clock_timestamp() FROM counted WHERE n < %(limit)s;

-- name: claim_ahead
-- The claim of tasks claimed ahead of a free worker: as `claim`, passing over the tasks of
-- limited names instead of stopping at them.
WITH picked AS MATERIALIZED (
    SELECT c.id
    FROM unnest(%(queues)s::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT id, priority, seq FROM {schema}.tasks t
        WHERE state = 'queued' AND queue = q.name
          AND NOT EXISTS (SELECT 1 FROM {schema}.limits l WHERE l.name = t.name)
        ORDER BY priority DESC, seq
        LIMIT %(n)s
        FOR UPDATE SKIP LOCKED
    ) c
    ORDER BY c.priority DESC, c.seq
    LIMIT %(n)s
)
UPDATE {schema}.tasks t
SET state = 'running', lease_token = gen_random_uuid()::text, consumer = %(consumer)s,
    lease_expires = clock_timestamp() + make_interval(secs => %(lease)s),
    attempts = CASE WHEN t.attempts < 2147483647 THEN t.attempts + 1 ELSE t.attempts END,
    alone = false, updated_at = clock_timestamp()
FROM picked
WHERE t.id = picked.id
RETURNING t.lease_token, t.id, t.name, t.queue, t.payload,
          extract(epoch FROM t.lease_expires)::float8, t.attempts, t.errors, t.interruptions,
          t.crashes, t.checkpoint, t.suspect, t.priority, t.max_crashes, t.seq;
