-- Undo 0001. Roles are dropped only when no other database still uses them, and
-- pg_cron only when it holds no jobs of anyone else.

ALTER DEFAULT PRIVILEGES IN SCHEMA ops REVOKE SELECT ON TABLES FROM waifu_ops;
ALTER DEFAULT PRIVILEGES IN SCHEMA game REVOKE SELECT ON TABLES FROM waifu_ops;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC;

DROP SCHEMA ops;
DROP SCHEMA api;
DROP SCHEMA game;

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['waifu_bot', 'waifu_ops'] LOOP
        BEGIN
            EXECUTE format('DROP OWNED BY %I', r);
            EXECUTE format('DROP ROLE %I', r);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role % is still used by another database; kept', r;
        END;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM cron.job) THEN
        DROP EXTENSION pg_cron;
    ELSE
        RAISE NOTICE 'pg_cron still has jobs (%); extension kept',
            (SELECT string_agg(coalesce(jobname, jobid::text), ', ') FROM cron.job);
    END IF;
END
$$;
