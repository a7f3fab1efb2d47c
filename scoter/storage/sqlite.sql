-- Queries of the SQLite backend, one per lifecycle step. Each block starts with "-- name: X".
-- Table scoter_tasks holds one row per task; `seq` orders tasks of equal priority by age.
-- `alone`: the running attempt runs alone (isolate); `suspect`: a holder died while running
-- it beside other tasks (the crash rule).

-- name: schema
-- The schema at version 2 (PRAGMA user_version), for a new file.
CREATE TABLE IF NOT EXISTS scoter_tasks (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload BLOB NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    eta REAL,
    state TEXT NOT NULL,
    max_crashes INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    interruptions INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    consumer TEXT,
    lease_expires REAL,
    checkpoint BLOB,
    result BLOB,
    result_expires REAL,
    error TEXT,
    reason TEXT,
    history TEXT NOT NULL DEFAULT '[]',
    progress TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    alone INTEGER NOT NULL DEFAULT 0,
    suspect INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS scoter_ready ON scoter_tasks (queue, priority DESC, seq)
    WHERE state = 'queued';
CREATE UNIQUE INDEX IF NOT EXISTS scoter_leased ON scoter_tasks (lease_token)
    WHERE lease_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS scoter_expiring ON scoter_tasks (lease_expires)
    WHERE state = 'running';
CREATE INDEX IF NOT EXISTS scoter_due ON scoter_tasks (eta) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS scoter_results ON scoter_tasks (result_expires) WHERE state = 'done';
{history_limit}

-- name: upgrade_to_1
-- A file of a scoter without a user_version (0) gets the crash rule's columns.
ALTER TABLE scoter_tasks ADD COLUMN alone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scoter_tasks ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;

-- name: upgrade_to_2
-- A file at version 1 gets the history limit.
{history_limit}

-- name: history_limit
-- A task's history keeps its latest 20 attempts (base.HISTORY_LIMIT): every statement that
-- appends one (json_insert) leaves the rest to this trigger, which runs only past the limit.
CREATE TRIGGER IF NOT EXISTS scoter_history_limit AFTER UPDATE OF history ON scoter_tasks
WHEN json_array_length(NEW.history) > 20
BEGIN
    UPDATE scoter_tasks SET history = (
        SELECT json_group_array(json(value)) FROM (
            SELECT value FROM json_each(NEW.history)
            WHERE key >= json_array_length(NEW.history) - 20 ORDER BY key
        )
    ) WHERE seq = NEW.seq; END;

-- name: has_tasks
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scoter_tasks';

-- name: enqueue
INSERT INTO scoter_tasks (id, name, queue, payload, priority, eta, state, max_crashes,
                          created_at, updated_at)
VALUES (:id, :name, :queue, :payload, :priority, :eta,
        CASE WHEN :eta IS NULL OR :eta <= :now THEN 'queued' ELSE 'scheduled' END,
        :max_crashes, :now, :now)
ON CONFLICT (id) DO UPDATE SET
    seq = (SELECT max(seq) + 1 FROM scoter_tasks),  -- starting over makes it the youngest
    name = excluded.name, queue = excluded.queue, payload = excluded.payload,
    priority = excluded.priority, eta = excluded.eta, state = excluded.state,
    max_crashes = excluded.max_crashes, attempts = 0, errors = 0, interruptions = 0,
    crashes = 0, checkpoint = NULL, result = NULL, result_expires = NULL, error = NULL,
    reason = NULL, history = '[]', alone = 0, suspect = 0, created_at = excluded.created_at,
    updated_at = excluded.updated_at
WHERE state IN ('done', 'dead');

-- name: claim
UPDATE scoter_tasks
SET state = 'running', lease_token = lower(hex(randomblob(16))), consumer = :consumer,
    lease_expires = :expires, attempts = attempts + 1, alone = 0, updated_at = :now
WHERE seq IN (
    SELECT seq FROM scoter_tasks
    WHERE state = 'queued' AND queue IN (SELECT value FROM json_each(:queues))
    ORDER BY priority DESC, seq
    LIMIT :n
)
RETURNING lease_token, id, name, queue, payload, attempts, errors, interruptions, crashes,
          checkpoint, suspect, priority, seq;

-- name: claim_one_queue
-- The common case: `queue = ?` lets SQLite walk the ready index in order instead of
-- sorting every queued task of the queues named in a JSON list.
UPDATE scoter_tasks
SET state = 'running', lease_token = lower(hex(randomblob(16))), consumer = :consumer,
    lease_expires = :expires, attempts = attempts + 1, alone = 0, updated_at = :now
WHERE seq IN (
    SELECT seq FROM scoter_tasks
    WHERE state = 'queued' AND queue = :queue
    ORDER BY priority DESC, seq
    LIMIT :n
)
RETURNING lease_token, id, name, queue, payload, attempts, errors, interruptions, crashes,
          checkpoint, suspect, priority, seq;

-- name: heartbeat
UPDATE scoter_tasks SET lease_expires = :expires
WHERE lease_token IN (SELECT value FROM json_each(:tokens))
RETURNING lease_token;

-- name: ack
UPDATE scoter_tasks
SET state = 'done', result = :result, result_expires = :result_expires,
    history = json_insert(history, '$[#]', json_object('attempt', attempts,
        'outcome', 'succeeded', 'at', :now, 'consumer', consumer)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE lease_token = :token;

-- name: retry
UPDATE scoter_tasks
SET state = CASE WHEN :eta <= :now THEN 'queued' ELSE 'scheduled' END, eta = :eta,
    errors = errors + 1, error = :error,
    history = json_insert(history, '$[#]', json_object('attempt', attempts,
        'outcome', 'error', 'at', :now, 'consumer', consumer, 'detail', :detail)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE lease_token = :token;

-- name: release
UPDATE scoter_tasks
SET state = CASE WHEN :delay > 0 THEN 'scheduled' ELSE 'queued' END,
    eta = CASE WHEN :delay > 0 THEN :now + :delay ELSE eta END,
    interruptions = interruptions + 1,
    history = json_insert(history, '$[#]', json_object('attempt', attempts,
        'outcome', 'interrupted', 'at', :now, 'consumer', consumer, 'detail', :reason)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE lease_token = :token;

-- name: dead
UPDATE scoter_tasks
SET state = 'dead', reason = :reason, error = :error,
    errors = errors + (:reason = 'error'), interruptions = interruptions + (:reason = 'interrupted'),
    history = json_insert(history, '$[#]', json_object('attempt', attempts,
        'outcome', :reason, 'at', :now, 'consumer', consumer, 'detail', :detail)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE lease_token = :token;

-- name: checkpoint
UPDATE scoter_tasks SET checkpoint = :state, updated_at = :now WHERE lease_token = :token;

-- name: isolate
UPDATE scoter_tasks SET alone = 1 WHERE lease_token = :token;

-- name: crash
-- The one crash rule, for `crash` (the attempt holding :token; :limit 0) and `rescue` (:token
-- NULL: up to :limit attempts whose lease expired before :now). An attempt run alone is
-- charged one crash (dead
-- `crashed` once crashes reach max_crashes); so is any other when :spared is NULL (`crash`:
-- its holder saw it die), else it is queued as a suspect, crashes unchanged, with :spared as
-- its history detail.
UPDATE scoter_tasks
SET crashes = crashes + (alone OR :spared IS NULL),
    state = CASE WHEN crashes + (alone OR :spared IS NULL) >= max_crashes
        THEN 'dead' ELSE 'queued' END,
    reason = CASE WHEN crashes + (alone OR :spared IS NULL) >= max_crashes
        THEN 'crashed' ELSE reason END,
    error = CASE WHEN crashes + (alone OR :spared IS NULL) >= max_crashes
        THEN 'crashed ' || (crashes + 1) || ' time(s), the last one: ' || :detail
        ELSE error END,
    suspect = suspect OR NOT (alone OR :spared IS NULL),
    history = json_insert(history, '$[#]', json_object('attempt', attempts,
        'outcome', 'crashed', 'at', :now, 'consumer', consumer,
        'detail', CASE WHEN alone OR :spared IS NULL THEN :detail ELSE :spared END)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE lease_token = :token OR (:token IS NULL AND seq IN (
    SELECT seq FROM scoter_tasks WHERE state = 'running' AND lease_expires < :now LIMIT :limit
))
RETURNING id, name, state, crashes, alone OR :spared IS NULL;

-- name: progress
UPDATE scoter_tasks SET progress = :progress WHERE lease_token = :token;

-- name: promote
-- Maintenance steps work in batches of up to :limit tasks (Storage.in_batches).
UPDATE scoter_tasks SET state = 'queued', updated_at = :now
WHERE seq IN (SELECT seq FROM scoter_tasks WHERE state = 'scheduled' AND eta <= :now LIMIT :limit);

-- name: get
SELECT * FROM scoter_tasks WHERE id = :id;

-- name: counts
SELECT queue, state, count(*) FROM scoter_tasks GROUP BY queue, state;

-- name: list
SELECT * FROM scoter_tasks
WHERE state = :state AND (:queue IS NULL OR queue = :queue)
ORDER BY seq LIMIT :limit;

-- name: requeue_dead
-- Up to :limit dead tasks after seq :after, in seq order; RETURNING seq: where the next batch
-- starts. requeue_dead_ids: those ids (a batch of them).
UPDATE scoter_tasks
SET state = 'queued', reason = NULL, eta = NULL, errors = 0, interruptions = 0, crashes = 0,
    alone = 0, suspect = 0, updated_at = :now
WHERE seq IN (
    SELECT seq FROM scoter_tasks WHERE state = 'dead' AND seq > :after ORDER BY seq LIMIT :limit
)
RETURNING seq;

-- name: requeue_dead_ids
UPDATE scoter_tasks
SET state = 'queued', reason = NULL, eta = NULL, errors = 0, interruptions = 0, crashes = 0,
    alone = 0, suspect = 0, updated_at = :now
WHERE state = 'dead' AND id IN (SELECT value FROM json_each(:ids));

-- name: purge
-- As requeue_dead: up to :limit tasks after seq :after. purge_ids: those ids.
DELETE FROM scoter_tasks
WHERE seq IN (
    SELECT seq FROM scoter_tasks WHERE state = :state AND seq > :after ORDER BY seq LIMIT :limit
)
RETURNING seq;

-- name: purge_ids
DELETE FROM scoter_tasks WHERE state = :state AND id IN (SELECT value FROM json_each(:ids));

-- name: expire_results
DELETE FROM scoter_tasks WHERE seq IN (
    SELECT seq FROM scoter_tasks WHERE state = 'done' AND result_expires < :now LIMIT :limit
);

-- name: free_pages
PRAGMA freelist_count;
