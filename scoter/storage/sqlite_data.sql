-- name: upgrade_to_7
-- Version 7 keeps key-value data.
{data_schema}

-- name: data_schema
-- Key-value data (scoter.storage.keyvalue): a value per key, gone once `expires` passed
-- (NULL: kept until deleted). Reads leave an expired row out; writes replace it.
CREATE TABLE IF NOT EXISTS scoter_data (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL
);

-- name: data_put
INSERT INTO scoter_data (key, value, expires) VALUES (:key, :value, :expires)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires;

-- name: data_put_if_empty
-- Changes a row only when the key is free: no row, or an expired one.
INSERT INTO scoter_data (key, value, expires) VALUES (:key, :value, :expires)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires
WHERE scoter_data.expires IS NOT NULL AND scoter_data.expires <= :now;

-- name: data_peek
SELECT value FROM scoter_data
WHERE key = :key AND (expires IS NULL OR expires > :now);

-- name: data_pop
-- Deletes the row whether or not it expired; returns the value only if it had not.
DELETE FROM scoter_data WHERE key = :key
RETURNING CASE WHEN expires IS NULL OR expires > :now THEN value END;

-- name: data_flush
DELETE FROM scoter_data;
