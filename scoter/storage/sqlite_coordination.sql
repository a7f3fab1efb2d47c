-- name: upgrade_to_5
-- A file at version 4 gets unique keys, locks and limits.
{coordination}

-- name: coordination
-- Unique keys, locks, and concurrency and rate limits (schema version 5). `unique_key`: see
-- enqueue_unique; a task holds its key while scheduled, queued or running. A lock is held while
-- its `expires` has not passed and, when taken under a task's lease (`task_id`,
-- `lease_token`), while that task runs with that token and its lease has not expired
-- ({lock_held}). `scoter_limits`: each limited task name's limits; `scoter_starts`: the claims
-- of each rate-limited name (and the uses of each take_rate key, '@' and the key) in its window.
ALTER TABLE scoter_tasks ADD COLUMN unique_key TEXT;
CREATE INDEX IF NOT EXISTS scoter_unique ON scoter_tasks (unique_key)
    WHERE unique_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS scoter_locks (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    task_id TEXT,
    lease_token TEXT,
    expires REAL,
    holder TEXT NOT NULL,
    acquired_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scoter_limits (
    name TEXT PRIMARY KEY,
    concurrency INTEGER,
    rate INTEGER,
    per REAL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scoter_starts (
    key TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS scoter_starts_key ON scoter_starts (key, at);

-- name: lock_held
-- Whether lock row `l` is held at :now. Rendered into the statements that name {lock_held}.
(l.expires IS NULL OR l.expires >= :now) AND (l.task_id IS NULL OR EXISTS (
    SELECT 1 FROM scoter_tasks t
    WHERE t.lease_token = l.lease_token AND t.id = l.task_id AND t.lease_expires >= :now))

-- name: unique_holder
SELECT id FROM scoter_tasks
WHERE unique_key = :key AND state IN ('scheduled', 'queued', 'running') LIMIT 1;

-- name: unique_set
UPDATE scoter_tasks SET unique_key = :key WHERE id = :id;

-- name: lock_acquire
-- Taken when free, or held by no one any more; under a lease only while that lease lives.
INSERT INTO scoter_locks AS l (name, owner, task_id, lease_token, expires, holder, acquired_at)
SELECT :name, :owner, :task_id, :lease_token, :expires, :holder, :now
WHERE :task_id IS NULL OR EXISTS (
    SELECT 1 FROM scoter_tasks t
    WHERE t.lease_token = :lease_token AND t.id = :task_id AND t.lease_expires >= :now)
ON CONFLICT (name) DO UPDATE SET
    owner = excluded.owner, task_id = excluded.task_id, lease_token = excluded.lease_token,
    expires = excluded.expires, holder = excluded.holder, acquired_at = excluded.acquired_at
WHERE NOT ({lock_held});

-- name: lock_renew
UPDATE scoter_locks AS l SET expires = :expires
WHERE name = :name AND owner = :owner AND {lock_held};

-- name: lock_owned
-- Whether :owner holds lock :name now (1 row) or not (none).
SELECT 1 FROM scoter_locks AS l WHERE name = :name AND owner = :owner AND {lock_held};

-- name: lock_release
DELETE FROM scoter_locks WHERE name = :name AND owner = :owner;

-- name: locks_held
-- The locks held now (of the JSON list :names, or all when NULL), with their lease's expiry.
SELECT l.name, l.holder, l.task_id, l.expires, l.acquired_at, t.lease_expires
FROM scoter_locks AS l
LEFT JOIN scoter_tasks t ON t.lease_token = l.lease_token AND t.id = l.task_id
WHERE (:names IS NULL OR l.name IN (SELECT value FROM json_each(:names))) AND {lock_held}
ORDER BY l.name;

-- name: locks_flush
DELETE FROM scoter_locks WHERE :names IS NULL OR name IN (SELECT value FROM json_each(:names));

-- name: limits_any
SELECT EXISTS (SELECT 1 FROM scoter_limits);

-- name: limit_set
INSERT INTO scoter_limits (name, concurrency, rate, per, updated_at)
VALUES (:name, :concurrency, :rate, :per, :now)
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, rate = excluded.rate,
    per = excluded.per, updated_at = excluded.updated_at;

-- name: limit_delete
DELETE FROM scoter_limits WHERE name = :name;

-- name: limit_states
-- Each limit (of the JSON list :names, or all when NULL): its tasks running now (through the
-- running tasks' index), its claims in its window, and the oldest of those.
SELECT l.name, l.concurrency, l.rate, l.per,
       (SELECT count(*) FROM scoter_tasks t WHERE t.state = 'running' AND t.name = l.name),
       (SELECT count(*) FROM scoter_starts s WHERE s.key = l.name AND s.at > :now - l.per),
       (SELECT min(at) FROM scoter_starts s WHERE s.key = l.name AND s.at > :now - l.per)
FROM scoter_limits l
WHERE :names IS NULL OR l.name IN (SELECT value FROM json_each(:names))
ORDER BY l.name;

-- name: claimable
-- The first :n queued tasks of the queues in claim order whose name is not in the JSON list
-- :full and whose seq is not in :picked: the candidates of a claim under limits.
SELECT seq, name FROM scoter_tasks
WHERE state = 'queued' AND queue IN (SELECT value FROM json_each(:queues))
  AND name NOT IN (SELECT value FROM json_each(:full))
  AND seq NOT IN (SELECT value FROM json_each(:picked))
ORDER BY priority DESC, seq
LIMIT :n;

-- name: claim_seqs
-- The claim of the tasks a claim under limits chose (the JSON list :seqs), as `claim` leases.
UPDATE scoter_tasks
SET state = 'running', lease_token = lower(hex(randomblob(16))), consumer = :consumer,
    lease_expires = :expires, attempts = attempts + 1, alone = 0, updated_at = :now
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND state = 'queued'
RETURNING lease_token, id, name, queue, payload, attempts, errors, interruptions, crashes,
          checkpoint, suspect, priority, seq, max_crashes;

-- name: start_record
INSERT INTO scoter_starts (key, at) VALUES (:key, :now);

-- name: starts_prune
DELETE FROM scoter_starts WHERE key = :key AND at <= :now - :per;

-- name: starts_reset
DELETE FROM scoter_starts WHERE key = :key;

-- name: starts_count
SELECT count(*) FROM scoter_starts WHERE key = :key AND at > :now - :per;

-- name: claim_ahead
-- The claim of tasks claimed ahead of a free worker: as `claim`, passing over the tasks of
-- limited names instead of stopping at them.
UPDATE scoter_tasks
SET state = 'running', lease_token = lower(hex(randomblob(16))), consumer = :consumer,
    lease_expires = :expires, attempts = attempts + 1, alone = 0, updated_at = :now
WHERE seq IN (
    SELECT seq FROM scoter_tasks
    WHERE state = 'queued' AND queue IN (SELECT value FROM json_each(:queues))
      AND name NOT IN (SELECT name FROM scoter_limits)
    ORDER BY priority DESC, seq
    LIMIT :n
)
RETURNING lease_token, id, name, queue, payload, attempts, errors, interruptions, crashes,
          checkpoint, suspect, priority, seq, max_crashes;
