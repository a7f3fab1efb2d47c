-- scoter's PostgreSQL schema, version 2: the flags of the crash rule (see Storage.rescue).
-- `alone`: the running attempt runs alone (isolate), so a crash of its holder is its own;
-- `suspect`: a holder died while running the task beside others, so it runs alone next.
-- A constant default adds a column without rewriting the table.

ALTER TABLE {schema}.tasks
    ADD COLUMN alone boolean NOT NULL DEFAULT false,
    ADD COLUMN suspect boolean NOT NULL DEFAULT false;
