-- name: join
-- A chord member finished: its result, once per member index, and one more member counted;
-- returns whether it was the last (no row when this index had finished before). Concurrent
-- members of one chord take turns on its row.
WITH member AS (
    INSERT INTO {schema}.chord_results (chord, idx, result)
    VALUES (%(chord)s, %(idx)s, %(result)s)
    ON CONFLICT (chord, idx) DO NOTHING
    RETURNING chord
),
counted AS (
    INSERT INTO {schema}.chords AS c (id, size, done)
    SELECT chord, %(size)s, 1 FROM member
    ON CONFLICT (id) DO UPDATE SET done = c.done + 1
    RETURNING c.done, c.size
)
SELECT done = size FROM counted;

-- name: release_chord
WITH results AS (DELETE FROM {schema}.chord_results WHERE chord = %(chord)s)
DELETE FROM {schema}.chords WHERE id = %(chord)s;

-- name: chord_info
SELECT c.size, r.idx, r.result
FROM {schema}.chords c LEFT JOIN {schema}.chord_results r ON r.chord = c.id
WHERE c.id = %(chord)s;
