-- Queries of the SQLite backend, one per lifecycle step. Each block starts with "-- name: X".
-- Table scoter_tasks holds one row per task; `seq` orders tasks of equal priority by age.
-- `alone`: the running attempt runs alone (isolate); `suspect`: a holder died while running
-- it beside other tasks (the crash rule).

-- name: schema
-- The schema at version 7 (PRAGMA user_version), for a new file.
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
-- Each periodic schedule's last enqueued slot (whole seconds since the epoch).
CREATE TABLE IF NOT EXISTS scoter_periodic (
    schedule TEXT PRIMARY KEY,
    slot INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
{revocations_table}

{history_limit}

{coordination}

{flows_schema}

{data_schema}

-- name: upgrade_to_1
-- A file of a scoter without a user_version (0) gets the crash rule's columns.
ALTER TABLE scoter_tasks ADD COLUMN alone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scoter_tasks ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;

-- name: upgrade_to_2
-- Version 2 keeps the last slot of each periodic schedule.
CREATE TABLE IF NOT EXISTS scoter_periodic (
    schedule TEXT PRIMARY KEY,
    slot INTEGER NOT NULL,
    updated_at REAL NOT NULL
);

-- name: upgrade_to_3
-- A file at version 2 gets the history limit.
{history_limit}

-- name: history_limit
-- A task's history keeps its latest 20 attempts (base.HISTORY_LIMIT): every statement that
-- appends one (json_insert) leaves the rest to this trigger, which runs only past the limit.
CREATE TRIGGER IF NOT EXISTS scoter_history_limit AFTER UPDATE OF history ON scoter_tasks
WHEN CASE WHEN json_valid(NEW.history) AND json_type(NEW.history) = 'array'
          THEN json_array_length(NEW.history) > 20 ELSE 0 END
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
WHERE :restart AND state IN ('done', 'dead');

-- name: claim
-- Tasks of a limited name are left queued: the claim under limits takes them (claimable).
UPDATE scoter_tasks
SET state = 'running', lease_token = lower(hex(randomblob(16))), consumer = :consumer,
    lease_expires = :expires, attempts = attempts + 1, alone = 0, updated_at = :now
WHERE name NOT IN (SELECT name FROM scoter_limits) AND seq IN (
    SELECT seq FROM scoter_tasks
    WHERE state = 'queued' AND queue IN (SELECT value FROM json_each(:queues))
    ORDER BY priority DESC, seq
    LIMIT :n
)
RETURNING lease_token, id, name, queue, payload, attempts, errors, interruptions, crashes,
          checkpoint, suspect, priority, seq, max_crashes;

-- name: claim_one_queue
-- The common case: `queue = ?` lets SQLite walk the ready index in order instead of
-- sorting every queued task of the queues named in a JSON list.
UPDATE scoter_tasks
SET state = 'running', lease_token = lower(hex(randomblob(16))), consumer = :consumer,
    lease_expires = :expires, attempts = attempts + 1, alone = 0, updated_at = :now
WHERE name NOT IN (SELECT name FROM scoter_limits) AND seq IN (
    SELECT seq FROM scoter_tasks
    WHERE state = 'queued' AND queue = :queue
    ORDER BY priority DESC, seq
    LIMIT :n
)
RETURNING lease_token, id, name, queue, payload, attempts, errors, interruptions, crashes,
          checkpoint, suspect, priority, seq, max_crashes;

-- name: claimed
-- The rows a claim just leased, read again: for when its own reply held text that is not
-- UTF-8, which sqlite3 could not read (see SQLiteStorage.claim).
SELECT lease_token, id, name, queue, payload, attempts, errors, interruptions, crashes,
       checkpoint, suspect, priority, seq, max_crashes
FROM scoter_tasks
WHERE state = 'running' AND lease_expires = :expires AND consumer = :consumer;

-- name: history
-- The history to append an attempt to: a stored one that is not a JSON list (garbage, a BLOB)
-- is replaced by a list of one `corrupt` entry quoting its start, so that the write still lands
-- (DESIGN G11). Rendered into the statements that name {history}; they bind :now.
CASE WHEN (CASE WHEN typeof(history) = 'text' AND json_valid(history)
                THEN json_type(history) END) = 'array'
     THEN history
     ELSE json_array(json_object('outcome', 'corrupt', 'at', :now,
         'detail', 'unreadable history replaced: ' || substr(quote(history), 1, 60)))
END

-- name: entry
-- The attempt number and consumer of a history entry: NULL for a stored value JSON cannot hold
-- (a BLOB). Rendered into the statements that name {entry}.
'attempt', CASE WHEN typeof(attempts) IN ('integer', 'real') THEN attempts END,
'consumer', CASE WHEN typeof(consumer) = 'text' THEN consumer END

-- name: heartbeat
UPDATE scoter_tasks SET lease_expires = :expires
WHERE lease_token IN (SELECT value FROM json_each(:tokens))
RETURNING lease_token;

-- name: ack
UPDATE scoter_tasks
SET state = 'done', result = :result, result_expires = :result_expires,
    history = json_insert({history}, '$[#]', json_object({entry},
        'outcome', 'succeeded', 'at', :now)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE lease_token = :token;

-- name: retry
UPDATE scoter_tasks
SET state = CASE WHEN :eta <= :now THEN 'queued' ELSE 'scheduled' END, eta = :eta,
    errors = errors + 1, error = :error,
    history = json_insert({history}, '$[#]', json_object({entry},
        'outcome', 'error', 'at', :now, 'detail', :detail)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE lease_token = :token;

-- name: release
UPDATE scoter_tasks
SET state = CASE WHEN :delay > 0 THEN 'scheduled' ELSE 'queued' END,
    eta = CASE WHEN :delay > 0 THEN :now + :delay ELSE eta END,
    interruptions = interruptions + 1,
    history = json_insert({history}, '$[#]', json_object({entry},
        'outcome', 'interrupted', 'at', :now, 'detail', :reason)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE lease_token = :token;

-- name: dead
UPDATE scoter_tasks
SET state = 'dead', reason = :reason, error = :error,
    errors = errors + (:reason = 'error'), interruptions = interruptions + (:reason = 'interrupted'),
    history = json_insert({history}, '$[#]', json_object({entry},
        'outcome', :reason, 'at', :now, 'detail', :detail)),
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
    state = CASE WHEN (alone OR :spared IS NULL) AND crashes + 1 >= max_crashes
        THEN 'dead' ELSE 'queued' END,
    reason = CASE WHEN (alone OR :spared IS NULL) AND crashes + 1 >= max_crashes
        THEN 'crashed' ELSE reason END,
    error = CASE WHEN (alone OR :spared IS NULL) AND crashes + 1 >= max_crashes
        THEN 'crashed ' || (crashes + 1) || ' time(s), the last one: ' || :detail
        ELSE error END,
    suspect = suspect OR NOT (alone OR :spared IS NULL),
    history = json_insert({history}, '$[#]', json_object({entry},
        'outcome', 'crashed', 'at', :now,
        'detail', CASE WHEN alone OR :spared IS NULL THEN :detail ELSE :spared END)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE lease_token = :token OR (:token IS NULL AND seq IN (
    SELECT seq FROM scoter_tasks WHERE state = 'running' AND lease_expires < :now LIMIT :limit
))
RETURNING id, name, state, crashes, alone OR :spared IS NULL;

-- name: quarantine_running
-- Running tasks whose lease expiry is not a time (NULL, text, a BLOB): no rescue could ever
-- tell their lease expired, so they go dead `corrupt` (DESIGN G11). Two index searches.
UPDATE scoter_tasks
SET state = 'dead', reason = 'corrupt',
    error = 'corrupt record: lease_expires is ' || substr(quote(lease_expires), 1, 60)
        || ', not a time; ' || :after,
    history = json_insert({history}, '$[#]', json_object({entry},
        'outcome', 'corrupt', 'at', :now, 'detail', 'lease_expires is not a time')),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE seq IN (
    SELECT seq FROM scoter_tasks WHERE state = 'running' AND lease_expires IS NULL
    UNION ALL
    SELECT seq FROM scoter_tasks WHERE state = 'running' AND lease_expires >= ''
)
RETURNING id, name;

-- name: quarantine_scheduled
-- Scheduled tasks whose eta is not a time: never due, so they go dead `corrupt` instead.
UPDATE scoter_tasks
SET state = 'dead', reason = 'corrupt',
    error = 'corrupt record: eta is ' || substr(quote(eta), 1, 60) || ', not a time; ' || :after,
    history = json_insert({history}, '$[#]', json_object({entry},
        'outcome', 'corrupt', 'at', :now, 'detail', 'eta is not a time')),
    updated_at = :now
WHERE seq IN (
    SELECT seq FROM scoter_tasks WHERE state = 'scheduled' AND eta IS NULL
    UNION ALL
    SELECT seq FROM scoter_tasks WHERE state = 'scheduled' AND eta >= ''
)
RETURNING id, name;

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
-- A state this scoter does not know lists as dead (see `Fields.state`).
SELECT * FROM scoter_tasks
WHERE (state = :state
       OR :state = 'dead' AND state NOT IN ('scheduled', 'queued', 'running', 'done', 'dead'))
  AND (:queue IS NULL OR queue = :queue)
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

-- name: slot_insert
-- A schedule's first slot: stored unless another caller stored one first.
INSERT INTO scoter_periodic (schedule, slot, updated_at) VALUES (:schedule, :slot, :now)
ON CONFLICT (schedule) DO NOTHING;

-- name: slot_advance
-- Compare-and-set: from the last slot the caller read to the new one.
UPDATE scoter_periodic SET slot = :slot, updated_at = :now
WHERE schedule = :schedule AND slot = :last;

-- name: last_slots
SELECT schedule, slot FROM scoter_periodic WHERE schedule IN (SELECT value FROM json_each(:schedules));

-- name: free_pages
PRAGMA freelist_count;

-- name: hand_back
-- Running -> queued, charged nothing, for the leases of :consumer in :queues whose token is not
-- in :keep: a claim whose reply was lost gave them to a consumer that never ran them.
UPDATE scoter_tasks
SET state = 'queued',
    history = json_insert({history}, '$[#]', json_object({entry},
        'outcome', 'handed back', 'at', :now, 'detail', :detail)),
    lease_token = NULL, consumer = NULL, lease_expires = NULL, progress = NULL,
    updated_at = :now
WHERE state = 'running' AND consumer = :consumer
  AND queue IN (SELECT value FROM json_each(:queues))
  AND lease_token NOT IN (SELECT value FROM json_each(:keep));

-- name: find
-- Tasks whose name contains :name (every task when it is empty), in :state (NULL: any; a state
-- this scoter does not know finds as dead, as `list` lists it), newest first. No index on name:
-- it reads every row of the states searched.
SELECT * FROM scoter_tasks
WHERE instr(name, :name) > 0
  AND (:state IS NULL OR state = :state
       OR :state = 'dead' AND state NOT IN ('scheduled', 'queued', 'running', 'done', 'dead'))
ORDER BY seq DESC LIMIT :limit;
