-- scoter's PostgreSQL schema, version 4: a task's history keeps its latest 20 attempts
-- (base.HISTORY_LIMIT). The statements that append an attempt (history || ...) leave the rest
-- to this trigger, which runs only past the limit (and leaves a history that is not a list to
-- the statements that replace it, DESIGN G11).

CREATE FUNCTION {schema}.history_limit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.history := jsonb_path_query_array(NEW.history, '$[last - 19 to last]');
    RETURN NEW;
END
$$;

CREATE TRIGGER history_limit BEFORE UPDATE OF history ON {schema}.tasks
    FOR EACH ROW WHEN (CASE WHEN jsonb_typeof(NEW.history) = 'array'
                            THEN jsonb_array_length(NEW.history) > 20 ELSE false END)
    EXECUTE FUNCTION {schema}.history_limit();
