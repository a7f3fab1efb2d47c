-- Queries of the PostgreSQL backend, one per lifecycle step. Each block starts with "-- name: X".
-- "{schema}" is replaced by the storage's schema name, "{claim}", "{crash_rule}", "{history}"
-- and "{info_columns}" by those queries.
-- The tables are in migrations/postgres/. Times are on the server's clock: a time the caller
-- passes arrives as `ahead`, its distance in seconds from the caller's present (see postgres.py).
-- Writes of an attempt find their row by lease token (fencing); statements that make tasks
-- claimable NOTIFY the queue's name on %(channel)s, delivered when they commit.

-- name: bootstrap
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: lock
-- Held until the migrating transaction ends: one process migrates, the others wait.
SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0));

-- name: installed
SELECT to_regclass(%(table)s) IS NOT NULL;

-- name: version
SELECT coalesce(max(version), 0) FROM {schema}.migrations;

-- name: record_migration
INSERT INTO {schema}.migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: enqueue
-- Rows are numbered in batch order, then written in id order so that concurrent batches lock
-- alike. A live id is left as it is; a done or dead id starts over as the youngest task, unless
-- %(restart)s is false.
WITH batch AS (
    SELECT b.*, nextval('{schema}.task_seq') AS seq
    FROM unnest(%(ids)s::text[], %(names)s::text[], %(queues)s::text[], %(payloads)s::bytea[],
                %(priorities)s::integer[], %(aheads)s::float8[], %(max_crashes)s::integer[])
         AS b(id, name, queue, payload, priority, ahead, max_crashes)
),
stored AS (
    INSERT INTO {schema}.tasks AS t (id, seq, name, queue, payload, priority, eta, state,
                                     max_crashes, created_at, updated_at)
    SELECT id, seq, name, queue, payload, priority,
           clock_timestamp() + make_interval(secs => ahead),
           CASE WHEN ahead > 0 THEN 'scheduled' ELSE 'queued' END,
           max_crashes, clock_timestamp(), clock_timestamp()
    FROM batch ORDER BY id
    ON CONFLICT (id) DO UPDATE SET
        seq = excluded.seq, name = excluded.name, queue = excluded.queue,
        payload = excluded.payload, priority = excluded.priority, eta = excluded.eta,
        state = excluded.state, max_crashes = excluded.max_crashes, attempts = 0, errors = 0,
        interruptions = 0, crashes = 0, lease_token = NULL, consumer = NULL,
        lease_expires = NULL, checkpoint = NULL, progress = NULL, result = NULL,
        result_expires = NULL, error = NULL, reason = NULL, history = '[]', alone = false,
        suspect = false, created_at = excluded.created_at, updated_at = excluded.updated_at
    WHERE %(restart)s AND t.state IN ('done', 'dead')
    RETURNING t.queue, t.state
),
woken AS (
    SELECT pg_notify(%(channel)s, queue) FROM (SELECT DISTINCT queue FROM stored WHERE state = 'queued') q
)
SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM woken);

-- name: history
-- The history to append an attempt to: a stored one that is not a JSON list is replaced by a
-- list of one `corrupt` entry quoting its start, so that the write still lands (DESIGN G11).
-- Rendered into the statements that name {history}.
CASE jsonb_typeof(history) WHEN 'array' THEN history
ELSE jsonb_build_array(jsonb_build_object('outcome', 'corrupt',
    'at', extract(epoch FROM clock_timestamp()),
    'detail', 'unreadable history replaced: ' || left(history::text, 60)))
END

-- name: claim
-- Per queue, the first n queued by priority then age, skipping rows other claims hold; then
-- the first n of those. MATERIALIZED: the locking pick runs exactly once.
WITH picked AS MATERIALIZED (
    SELECT c.id
    FROM unnest(%(queues)s::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT id, priority, seq FROM {schema}.tasks
        WHERE state = 'queued' AND queue = q.name
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
    -- at the limit, left as it is: the claim's reader quarantines the task (DESIGN G11)
    attempts = CASE WHEN t.attempts < 2147483647 THEN t.attempts + 1 ELSE t.attempts END,
    alone = false, updated_at = clock_timestamp()
FROM picked
WHERE t.id = picked.id
  -- a task of a limited name is left queued: the claim under limits takes it (claimable)
  AND NOT EXISTS (SELECT 1 FROM {schema}.limits l WHERE l.name = t.name)
RETURNING t.lease_token, t.id, t.name, t.queue, t.payload,
          extract(epoch FROM t.lease_expires)::float8, t.attempts, t.errors, t.interruptions,
          t.crashes, t.checkpoint, t.suspect, t.priority, t.max_crashes, t.seq;

-- name: ack
UPDATE {schema}.tasks
SET state = 'done', result = %(result)s,
    result_expires = clock_timestamp() + make_interval(secs => %(result_ttl)s),
    history = {history} || jsonb_build_object('attempt', attempts, 'outcome', 'succeeded',
        'at', extract(epoch FROM clock_timestamp()), 'consumer', consumer),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = clock_timestamp()
WHERE lease_token = %(token)s;

-- name: ack_many_and_claim
-- Every ack (each as `ack` above, matched by its token) and the claim in one statement: one
-- round trip, one commit. The arrays hold distinct tokens; RETURNING names the position of each
-- token that held its lease. The rows cannot overlap: acked rows are running, claimed ones
-- queued. The acked rows are locked in id order, as `heartbeat` locks its rows.
WITH held AS MATERIALIZED (
    SELECT t.id, a.result, a.result_ttl, a.i
    FROM {schema}.tasks t
    JOIN unnest(%(tokens)s::text[], %(results)s::bytea[], %(result_ttls)s::float8[])
         WITH ORDINALITY AS a(token, result, result_ttl, i) ON t.lease_token = a.token
    ORDER BY t.id
    FOR UPDATE OF t
),
acked AS (
    UPDATE {schema}.tasks t
    SET state = 'done', result = h.result,
        result_expires = clock_timestamp() + make_interval(secs => h.result_ttl),
        history = {history} || jsonb_build_object('attempt', t.attempts, 'outcome', 'succeeded',
            'at', extract(epoch FROM clock_timestamp()), 'consumer', t.consumer),
        lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
        updated_at = clock_timestamp()
    FROM held h
    WHERE t.id = h.id
    RETURNING h.i
),
claimed AS ({claim})
SELECT (SELECT array_agg(i) FROM acked), c.*
FROM (SELECT) AS one LEFT JOIN claimed c ON true;

-- name: heartbeat
-- Statements that lock several running rows (this one, `ack_many_and_claim`) lock them in id
-- order: a consumer's heartbeat and its acks, which share rows, then never wait for each other
-- in a cycle (a deadlock, which PostgreSQL breaks only after deadlock_timeout, failing one).
-- The lock is the fence: a locked row matched its token in its latest version, and keeps it.
WITH held AS MATERIALIZED (
    SELECT id FROM {schema}.tasks WHERE lease_token = ANY(%(tokens)s::text[])
    ORDER BY id
    FOR UPDATE
)
UPDATE {schema}.tasks t SET lease_expires = clock_timestamp() + make_interval(secs => %(lease)s)
FROM held
WHERE t.id = held.id
RETURNING t.lease_token;

-- name: retry
WITH settled AS (
    UPDATE {schema}.tasks
    SET state = CASE WHEN %(ahead)s::float8 > 0 THEN 'scheduled' ELSE 'queued' END,
        eta = clock_timestamp() + make_interval(secs => %(ahead)s::float8),
        errors = errors + 1, error = %(error)s,
        history = {history} || jsonb_strip_nulls(jsonb_build_object('attempt', attempts,
            'outcome', 'error', 'at', extract(epoch FROM clock_timestamp()),
            'consumer', consumer, 'detail', %(detail)s::text)),
        lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
        updated_at = clock_timestamp()
    WHERE lease_token = %(token)s
    RETURNING queue, state
),
woken AS (SELECT pg_notify(%(channel)s, queue) FROM settled WHERE state = 'queued')
SELECT (SELECT count(*) FROM settled), (SELECT count(*) FROM woken);

-- name: release
WITH settled AS (
    UPDATE {schema}.tasks
    SET state = CASE WHEN %(delay)s::float8 > 0 THEN 'scheduled' ELSE 'queued' END,
        eta = CASE WHEN %(delay)s::float8 > 0
            THEN clock_timestamp() + make_interval(secs => %(delay)s::float8) ELSE eta END,
        interruptions = interruptions + 1,
        history = {history} || jsonb_strip_nulls(jsonb_build_object('attempt', attempts,
            'outcome', 'interrupted', 'at', extract(epoch FROM clock_timestamp()),
            'consumer', consumer, 'detail', %(reason)s::text)),
        lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
        updated_at = clock_timestamp()
    WHERE lease_token = %(token)s
    RETURNING queue, state
),
woken AS (SELECT pg_notify(%(channel)s, queue) FROM settled WHERE state = 'queued')
SELECT (SELECT count(*) FROM settled), (SELECT count(*) FROM woken);

-- name: dead
UPDATE {schema}.tasks
SET state = 'dead', reason = %(reason)s, error = %(error)s,
    errors = errors + (%(reason)s = 'error')::integer,
    interruptions = interruptions + (%(reason)s = 'interrupted')::integer,
    history = {history} || jsonb_strip_nulls(jsonb_build_object('attempt', attempts,
        'outcome', %(reason)s::text, 'at', extract(epoch FROM clock_timestamp()),
        'consumer', consumer, 'detail', %(detail)s::text)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = clock_timestamp()
WHERE lease_token = %(token)s;

-- name: checkpoint
UPDATE {schema}.tasks SET checkpoint = %(state)s, updated_at = clock_timestamp()
WHERE lease_token = %(token)s;

-- name: progress
UPDATE {schema}.tasks SET progress = ARRAY[%(done)s, %(total)s]::integer[]
WHERE lease_token = %(token)s;

-- name: isolate
UPDATE {schema}.tasks SET alone = true WHERE lease_token = %(token)s;

-- name: rescue
-- Up to %(limit)s expired leases (maintenance steps work in batches: Storage.in_batches), their
-- holders presumed dead, charged or not by the crash rule. Rows a settling write holds now are
-- left to it.
WITH target AS MATERIALIZED (
    SELECT id, alone FROM {schema}.tasks
    WHERE state = 'running' AND lease_expires < now() + make_interval(secs => %(ahead)s)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
{crash_rule};

-- name: crash
-- The holder saw its attempt die (a killed child process): no need to wait for the lease.
WITH target AS MATERIALIZED (
    SELECT id, alone FROM {schema}.tasks WHERE lease_token = %(token)s FOR UPDATE
),
{crash_rule};

-- name: crash_rule
-- The one crash rule, the end of `rescue` and `crash`, for the rows of `target` (locked, so
-- `alone` is the row's latest): an attempt run alone is charged one crash (dead `crashed` once
-- crashes reach max_crashes); so is any other when %(spared)s is NULL (`crash`), else it is
-- queued as a suspect, crashes unchanged, with %(spared)s as its history detail.
crashed AS (
    UPDATE {schema}.tasks t
    SET crashes = t.crashes + c.charged::integer,
        state = CASE WHEN c.charged AND t.crashes + 1 >= t.max_crashes
            THEN 'dead' ELSE 'queued' END,
        reason = CASE WHEN c.charged AND t.crashes + 1 >= t.max_crashes
            THEN 'crashed' ELSE t.reason END,
        error = CASE WHEN c.charged AND t.crashes + 1 >= t.max_crashes
            THEN 'crashed ' || (t.crashes + 1) || ' time(s), the last one: ' || %(detail)s::text
            ELSE t.error END,
        suspect = t.suspect OR NOT c.charged,
        history = {history} || jsonb_build_object('attempt', t.attempts, 'outcome', 'crashed',
            'at', extract(epoch FROM clock_timestamp()), 'consumer', t.consumer,
            'detail', CASE WHEN c.charged THEN %(detail)s::text ELSE %(spared)s::text END),
        lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
        updated_at = clock_timestamp()
    FROM (SELECT id, alone OR %(spared)s::text IS NULL AS charged FROM target) c
    WHERE t.id = c.id
    RETURNING t.id, t.name, t.state, t.crashes, c.charged, t.queue
),
woken AS (
    SELECT pg_notify(%(channel)s, queue)
    FROM (SELECT DISTINCT queue FROM crashed WHERE state = 'queued') q
)
SELECT id, name, state, crashes, charged, (SELECT count(*) FROM woken) FROM crashed;

-- name: quarantine_running
-- Running tasks that rescue could never free, or whose crash would not fit an integer: no lease
-- expiry, an infinite one, crashes out of range. They go dead `corrupt` (DESIGN G11).
WITH bad AS MATERIALIZED (
    SELECT id FROM {schema}.tasks
    WHERE state = 'running'
      AND (lease_expires IS NULL OR NOT isfinite(lease_expires)
           OR crashes NOT BETWEEN 0 AND 2147483646)
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.tasks t
SET state = 'dead', reason = 'corrupt',
    error = 'corrupt record: ' || CASE
        WHEN t.lease_expires IS NULL THEN 'lease_expires is missing, not a time'
        WHEN NOT isfinite(t.lease_expires) THEN 'lease_expires is ' || t.lease_expires
            || ', not a finite time'
        ELSE 'crashes is ' || t.crashes || ', not from 0 to 2147483646' END
        || '; ' || %(after)s::text,
    history = {history} || jsonb_build_object('attempt', t.attempts, 'outcome', 'corrupt',
        'at', extract(epoch FROM clock_timestamp()), 'consumer', t.consumer,
        'detail', 'unfit to rescue'),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = clock_timestamp()
FROM bad
WHERE t.id = bad.id
RETURNING t.id, t.name, t.error;

-- name: quarantine_scheduled
-- Scheduled tasks that are never due (no eta, an infinite one) go dead `corrupt` instead.
WITH bad AS MATERIALIZED (
    SELECT id FROM {schema}.tasks
    WHERE state = 'scheduled' AND (eta IS NULL OR eta = 'infinity')
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.tasks t
SET state = 'dead', reason = 'corrupt',
    error = 'corrupt record: eta is ' || coalesce(t.eta::text, 'missing') || ', not a time; '
        || %(after)s::text,
    history = {history} || jsonb_build_object('attempt', t.attempts, 'outcome', 'corrupt',
        'at', extract(epoch FROM clock_timestamp()), 'detail', 'never due'),
    updated_at = clock_timestamp()
FROM bad
WHERE t.id = bad.id
RETURNING t.id, t.name, t.error;

-- name: promote
-- Up to %(limit)s due tasks by eta, from %(after)s on: a batch starts at the last eta of the one
-- before (second column), so that it does not step again over the index entries of the rows
-- that one moved, which stay until a vacuum (with 2M rows, the 400th batch stepped over 2M).
WITH due AS MATERIALIZED (
    SELECT id, eta FROM {schema}.tasks
    WHERE state = 'scheduled' AND eta >= %(after)s::timestamptz
        AND eta <= now() + make_interval(secs => %(ahead)s)
    ORDER BY eta
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
promoted AS (
    UPDATE {schema}.tasks t SET state = 'queued', updated_at = clock_timestamp()
    FROM due WHERE t.id = due.id
    RETURNING t.queue
),
woken AS (SELECT pg_notify(%(channel)s, queue) FROM (SELECT DISTINCT queue FROM promoted) q)
SELECT (SELECT count(*) FROM promoted), (SELECT max(eta) FROM due),
       (SELECT count(*) FROM woken);

-- name: info_columns
-- What inspection reads of a row: times as seconds since the epoch, so that an infinite one
-- is read (as inf) instead of failing the fetch. Rendered into the queries naming it.
id, name, queue, state, priority, extract(epoch FROM eta)::float8 AS eta, attempts, errors,
interruptions, crashes, max_crashes, consumer,
extract(epoch FROM lease_expires)::float8 AS lease_expires, result, error, reason, payload,
extract(epoch FROM created_at)::float8 AS created_at,
extract(epoch FROM updated_at)::float8 AS updated_at, history, progress, suspect

-- name: get
SELECT {info_columns} FROM {schema}.tasks WHERE id = %(id)s;

-- name: counts
SELECT queue, state, count(*) FROM {schema}.tasks GROUP BY queue, state;

-- name: list
SELECT {info_columns} FROM {schema}.tasks
WHERE state = %(state)s AND (%(queue)s::text IS NULL OR queue = %(queue)s)
ORDER BY seq LIMIT %(limit)s;

-- name: requeue_dead
-- Up to %(limit)s dead tasks after id %(after)s, in id order (the primary key's): a batch starts
-- where the one before it stopped, the last id it picked (second column). requeue_dead_ids:
-- those ids (a batch of them).
WITH picked AS MATERIALIZED (
    SELECT id FROM {schema}.tasks
    WHERE state = 'dead' AND id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE
),
requeued AS (
    UPDATE {schema}.tasks t
    SET state = 'queued', reason = NULL, eta = NULL, errors = 0, interruptions = 0,
        crashes = 0, alone = false, suspect = false, updated_at = clock_timestamp()
    FROM picked
    WHERE t.id = picked.id AND t.state = 'dead'
    RETURNING t.queue
),
woken AS (SELECT pg_notify(%(channel)s, queue) FROM (SELECT DISTINCT queue FROM requeued) q)
SELECT (SELECT count(*) FROM requeued), (SELECT max(id) FROM picked),
       (SELECT count(*) FROM woken);

-- name: requeue_dead_ids
WITH requeued AS (
    UPDATE {schema}.tasks
    SET state = 'queued', reason = NULL, eta = NULL, errors = 0, interruptions = 0,
        crashes = 0, alone = false, suspect = false, updated_at = clock_timestamp()
    WHERE id = ANY(%(ids)s::text[]) AND state = 'dead'
    RETURNING queue
),
woken AS (SELECT pg_notify(%(channel)s, queue) FROM (SELECT DISTINCT queue FROM requeued) q)
SELECT (SELECT count(*) FROM requeued), (SELECT count(*) FROM woken);

-- name: purge
-- As requeue_dead: up to %(limit)s tasks after id %(after)s. purge_ids: those ids.
WITH picked AS MATERIALIZED (
    SELECT id FROM {schema}.tasks
    WHERE state = %(state)s AND id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE
),
purged AS (
    DELETE FROM {schema}.tasks t USING picked
    WHERE t.id = picked.id AND t.state = %(state)s
    RETURNING t.id
)
SELECT (SELECT count(*) FROM purged), (SELECT max(id) FROM picked);

-- name: purge_ids
DELETE FROM {schema}.tasks WHERE id = ANY(%(ids)s::text[]) AND state = %(state)s;

-- name: expire_results
-- As promote: up to %(limit)s by result expiry, from %(after)s on. Rows another statement holds
-- (an enqueue starting a done id over) are left to the next time.
WITH expired AS MATERIALIZED (
    SELECT id, result_expires FROM {schema}.tasks
    WHERE state = 'done' AND result_expires >= %(after)s::timestamptz
        AND result_expires < now() + make_interval(secs => %(ahead)s)
    ORDER BY result_expires
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
deleted AS (DELETE FROM {schema}.tasks t USING expired WHERE t.id = expired.id RETURNING t.id)
SELECT (SELECT count(*) FROM deleted), (SELECT max(result_expires) FROM expired);

-- name: slot_insert
-- A schedule's first slot: stored unless another caller stored one first.
INSERT INTO {schema}.periodic (schedule, slot) VALUES (%(schedule)s, %(slot)s)
ON CONFLICT (schedule) DO NOTHING;

-- name: slot_advance
-- Compare-and-set: a concurrent caller waits for the row lock, then finds the slot moved on.
UPDATE {schema}.periodic SET slot = %(slot)s, updated_at = clock_timestamp()
WHERE schedule = %(schedule)s AND slot = %(last)s;

-- name: last_slots
SELECT schedule, slot FROM {schema}.periodic WHERE schedule = ANY(%(schedules)s::text[]);

-- name: hand_back
-- Running -> queued, charged nothing, for the leases of %(consumer)s in %(queues)s whose token
-- is not in %(keep)s: a claim whose reply was lost gave them to a consumer that never ran them.
WITH orphans AS MATERIALIZED (
    SELECT id FROM {schema}.tasks
    WHERE state = 'running' AND consumer = %(consumer)s AND queue = ANY(%(queues)s::text[])
      AND NOT lease_token = ANY(%(keep)s::text[])
    ORDER BY id
    FOR UPDATE SKIP LOCKED
),
handed AS (
    UPDATE {schema}.tasks t
    SET state = 'queued',
        history = {history} || jsonb_strip_nulls(jsonb_build_object('attempt', attempts,
            'outcome', 'handed back', 'at', extract(epoch FROM clock_timestamp()),
            'consumer', consumer, 'detail', %(detail)s::text)),
        lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
        updated_at = clock_timestamp()
    FROM orphans o
    WHERE t.id = o.id
    RETURNING t.queue
),
woken AS (SELECT pg_notify(%(channel)s, queue) FROM (SELECT DISTINCT queue FROM handed) q)
SELECT (SELECT count(*) FROM handed), (SELECT count(*) FROM woken);

-- name: find
-- Tasks whose name contains %(name)s (every task when it is empty), in %(state)s (NULL: any),
-- newest first. No index on name: it reads every row of the states searched.
SELECT {info_columns} FROM {schema}.tasks
WHERE strpos(name, %(name)s) > 0 AND (%(state)s::text IS NULL OR state = %(state)s)
ORDER BY seq DESC LIMIT %(limit)s;
