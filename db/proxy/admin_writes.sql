-- `migrate --admin-writes` only (tests, repairs): superusers of the proxy UPDATE game.* views
-- (forwarded to the partition as its superuser) and see and alter the partitions' pg_cron
-- jobs. Run inside the generated part (after its schemas are made again).
CREATE FUNCTION partition_call.replace_row(hash integer, relation text, old_row jsonb, new_row jsonb)
    RETURNS integer LANGUAGE plproxy
AS $plproxy$
    CLUSTER 'waifu_admin';
    RUN ON hash;
    SELECT partition.replace_row(relation, old_row, new_row) AS replace_row;
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.replace_row(integer, text, jsonb, jsonb) FROM PUBLIC;

-- pg_cron of the partitions, for superusers (tests pause the tick with it): cron.job is
-- every partition's jobs, cron.alter_job alters the job with that id on every partition
-- (the migrations create the jobs in the same order everywhere, so the ids match).
CREATE FUNCTION partition_call.cron_jobs(OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE plproxy
AS $plproxy$
    CLUSTER 'waifu_admin';
    RUN ON ALL;
    SELECT (SELECT i.index FROM partition.identity AS i) AS partition, to_jsonb(j) AS data FROM cron.job AS j;
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.cron_jobs() FROM PUBLIC;
CREATE FUNCTION partition_call.cron_alter_job(job_id bigint, schedule text, command text, database text,
                                              username text, active boolean)
    RETURNS SETOF integer LANGUAGE plproxy
AS $plproxy$
    CLUSTER 'waifu_admin';
    RUN ON ALL;
    SELECT 1 AS cron_alter_job FROM cron.alter_job(job_id, schedule, command, database, username, active);
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.cron_alter_job(bigint, text, text, text, text, boolean) FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS cron;
CREATE OR REPLACE FUNCTION cron.alter_job(job_id bigint, schedule text DEFAULT NULL, command text DEFAULT NULL,
                                          database text DEFAULT NULL, username text DEFAULT NULL,
                                          active boolean DEFAULT NULL) RETURNS void
    LANGUAGE sql
    BEGIN ATOMIC
        SELECT count(*) FROM partition_call.cron_alter_job(job_id, schedule, command, database, username, active);
    END;
REVOKE ALL ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean) FROM PUBLIC;
CREATE OR REPLACE VIEW cron.job AS
SELECT DISTINCT ON (r.jobid) r.*
FROM partition_call.cron_jobs() AS p
CROSS JOIN LATERAL jsonb_populate_record(NULL::partition_types.cron__job, p.data) AS r
ORDER BY r.jobid;
REVOKE ALL ON cron.job FROM PUBLIC;
