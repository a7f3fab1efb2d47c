-- scoter's PostgreSQL schema, version 8: key-value data (scoter.storage.keyvalue). A value per
-- key, gone once `expires` passed on the server's clock (NULL: kept until deleted). Reads
-- leave an expired row out; writes replace it.

CREATE TABLE {schema}.data (
    key text PRIMARY KEY,
    value bytea NOT NULL,
    expires timestamptz
);
