-- scoter's PostgreSQL schema, version 3: a task's history keeps its latest 20 attempts
-- (base.HISTORY_LIMIT). The statements that append an attempt (history || ...) leave the rest
-- to this trigger, which runs only past the limit.

CREATE FUNCTION {schema}.history_limit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.history := jsonb_path_query_array(NEW.history, '$[last - 19 to last]');
    RETURN NEW;
END
$$;

CREATE TRIGGER history_limit BEFORE UPDATE OF history ON {schema}.tasks
    FOR EACH ROW WHEN (jsonb_array_length(NEW.history) > 20)
    EXECUTE FUNCTION {schema}.history_limit();
