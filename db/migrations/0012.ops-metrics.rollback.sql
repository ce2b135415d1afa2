-- Back to 0011: no metrics functions, no monitoring login, ops.help without the alerts.

DROP VIEW ops.help;
CREATE VIEW ops.help AS
SELECT n.nspname || '.' || p.proname AS name,
       CASE p.prokind WHEN 'f' THEN 'function' ELSE 'procedure' END AS kind,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS returns,
       split_part(coalesce(obj_description(p.oid, 'pg_proc'), ''), E'\n', 1) AS description
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('ops', 'api')
UNION ALL
SELECT n.nspname || '.' || c.relname, 'view', NULL, NULL,
       split_part(coalesce(obj_description(c.oid, 'pg_class'), ''), E'\n', 1)
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'ops' AND c.relkind = 'v'
ORDER BY 2, 1;
COMMENT ON VIEW ops.help IS
    'The operator''s manual: every ops/api function and ops view with its arguments and first line of its comment.';
GRANT SELECT ON ops.help TO waifu_ops;

DROP FUNCTION ops.metrics_outbox();
DROP FUNCTION ops.metrics_cron();
DROP FUNCTION ops.metrics();
REVOKE USAGE ON SCHEMA ops FROM waifu_monitor;
DO $$
BEGIN
    EXECUTE format('ALTER ROLE waifu_monitor IN DATABASE %I RESET ALL', current_database());
    DROP ROLE waifu_monitor;
EXCEPTION WHEN dependent_objects_still_exist THEN
    RAISE NOTICE 'role waifu_monitor is still used by another database; kept';
END
$$;
