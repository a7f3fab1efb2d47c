-- Key-value data (migration 0008, scoter.storage.keyvalue). `expires` on the server's clock:
-- %(ttl)s seconds from now, or NULL for none. Each step is one statement.

-- name: data_put
INSERT INTO {schema}.data (key, value, expires)
VALUES (%(key)s, %(value)s, clock_timestamp() + make_interval(secs => %(ttl)s))
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires;

-- name: data_put_if_empty
-- Changes a row only when the key is free: no row, or an expired one. Concurrent callers
-- take turns on the key's row (its unique index), so one stores.
INSERT INTO {schema}.data (key, value, expires)
VALUES (%(key)s, %(value)s, clock_timestamp() + make_interval(secs => %(ttl)s))
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires
WHERE data.expires IS NOT NULL AND data.expires <= clock_timestamp();

-- name: data_peek
SELECT value FROM {schema}.data
WHERE key = %(key)s AND (expires IS NULL OR expires > clock_timestamp());

-- name: data_pop
-- Deletes the row whether or not it expired; returns the value only if it had not.
DELETE FROM {schema}.data WHERE key = %(key)s
RETURNING CASE WHEN expires IS NULL OR expires > clock_timestamp() THEN value END;

-- name: data_flush
DELETE FROM {schema}.data;
