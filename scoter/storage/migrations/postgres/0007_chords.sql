-- scoter's PostgreSQL schema, version 7: the countdowns of chords (scoter.flows). A row per
-- chord counting its finished members (`done` of `size`), and a row per finished member with
-- its result, which the chord's callback reads. Written by the acks of the members, in their
-- transactions; deleted by the callback's own ack.

CREATE TABLE {schema}.chords (
    id text PRIMARY KEY,
    size integer NOT NULL,
    done integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE {schema}.chord_results (
    chord text NOT NULL,
    idx integer NOT NULL,
    result bytea NOT NULL,
    PRIMARY KEY (chord, idx)
);
