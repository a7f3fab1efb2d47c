-- name: revocations_table
-- Revocations (schema version 4). Kind 'task', key a task name: every task of that name that a
-- consumer claims is revoked, until `until` (NULL: until restored), or only the next (`once`).
-- Kind 'id', key a task id: a task revoked while it ran; `created_at` is the task's as it was
-- then, so that a later re-enqueue of the id (which sets a new one) is not revoked.
CREATE TABLE IF NOT EXISTS scoter_revocations (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    until REAL,
    once INTEGER NOT NULL DEFAULT 0,
    created_at REAL,
    PRIMARY KEY (kind, key)
);

-- name: upgrade_to_4
-- A file at version 3 gets the revocations table.
{revocations_table}

-- name: revoke_find
SELECT id, state FROM scoter_tasks
WHERE id IN (SELECT value FROM json_each(:ids)) AND state IN ('scheduled', 'queued', 'running');

-- name: revoke_waiting
-- Scheduled or queued → dead `revoked` (the right-hand sides read the row as it was).
UPDATE scoter_tasks
SET state = 'dead', reason = 'revoked', error = 'revoked while ' || state,
    history = json_insert({history}, '$[#]', json_object({entry},
        'outcome', 'revoked', 'at', :now, 'detail', 'revoked while ' || state)),
    updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND state IN ('scheduled', 'queued');

-- name: revoke_running
INSERT INTO scoter_revocations (kind, key, created_at)
SELECT 'id', id, created_at FROM scoter_tasks
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'running'
ON CONFLICT (kind, key) DO UPDATE SET created_at = excluded.created_at;

-- name: forget_stale_revocations
-- Records of tasks revoked while running that ended, or were enqueued anew since.
DELETE FROM scoter_revocations
WHERE kind = 'id' AND NOT EXISTS (
    SELECT 1 FROM scoter_tasks t
    WHERE t.id = scoter_revocations.key AND t.created_at = scoter_revocations.created_at
        AND t.state IN ('scheduled', 'queued', 'running')
);

-- name: restore_revoked
UPDATE scoter_tasks
SET state = CASE WHEN typeof(eta) IN ('integer', 'real') AND eta > :now
                 THEN 'scheduled' ELSE 'queued' END,
    reason = NULL, error = NULL, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'dead' AND reason = 'revoked'
RETURNING id;

-- name: forget_revocations
DELETE FROM scoter_revocations WHERE kind = 'id' AND key IN (SELECT value FROM json_each(:ids))
RETURNING key;

-- name: forget_revocation
DELETE FROM scoter_revocations WHERE kind = 'id' AND key = :id;

-- name: revoke_task
INSERT INTO scoter_revocations (kind, key, until, once) VALUES ('task', :name, :until, :once)
ON CONFLICT (kind, key) DO UPDATE SET until = excluded.until, once = excluded.once;

-- name: restore_task
DELETE FROM scoter_revocations WHERE kind = 'task' AND key = :name;

-- name: take_revocation
DELETE FROM scoter_revocations WHERE kind = 'task' AND key = :name AND once = 1;

-- name: revocations
SELECT kind, key, until, once FROM scoter_revocations r
WHERE kind = 'task' OR EXISTS (
    SELECT 1 FROM scoter_tasks t
    WHERE t.id = r.key AND t.created_at = r.created_at
        AND t.state IN ('scheduled', 'queued', 'running')
);

-- name: next_eta
-- The scheduled index in eta order: numbers sort before text, so a corrupt eta comes last.
SELECT eta FROM scoter_tasks WHERE state = 'scheduled' AND eta IS NOT NULL ORDER BY eta LIMIT 1;
