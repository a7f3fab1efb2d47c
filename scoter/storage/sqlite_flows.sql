-- name: upgrade_to_6
-- Version 6 keeps the countdowns of chords.
{flows_schema}

-- name: flows_schema
-- Chords (scoter.flows): a row per chord counting its finished members (`done` of `size`),
-- and a row per finished member with its result, which the chord's callback reads. Written
-- by the acks of the members (join_result, join_count), deleted by the callback's own ack.
CREATE TABLE IF NOT EXISTS scoter_chords (
    id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scoter_chord_results (
    chord TEXT NOT NULL,
    idx INTEGER NOT NULL,
    result BLOB NOT NULL,
    PRIMARY KEY (chord, idx)
) WITHOUT ROWID;

-- name: join_result
-- A chord member finished: its result, once per member index (a second is left out).
INSERT INTO scoter_chord_results (chord, idx, result) VALUES (:chord, :idx, :result)
ON CONFLICT (chord, idx) DO NOTHING;

-- name: join_count
-- After a join_result that stored a row: one more member done; the caller compares with size.
INSERT INTO scoter_chords (id, size, done, created_at) VALUES (:chord, :size, 1, :now)
ON CONFLICT (id) DO UPDATE SET done = done + 1
RETURNING done, size;

-- name: release_chord
DELETE FROM scoter_chords WHERE id = :chord;

-- name: release_chord_results
DELETE FROM scoter_chord_results WHERE chord = :chord;

-- name: chord_size
SELECT size FROM scoter_chords WHERE id = :chord;

-- name: chord_results
SELECT idx, result FROM scoter_chord_results WHERE chord = :chord;
