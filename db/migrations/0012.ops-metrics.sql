-- Operators can see what matters from Prometheus (issue 20).
--
-- * ops.metrics(), ops.metrics_cron(), ops.metrics_outbox(): the database's own figures
--   (the restore tick, pg_cron's runs, the outbox, the ledger, players and waifus) as rows
--   whose columns are the metrics, for prometheus-postgres-exporter's queries file
--   (db/monitoring/queries.yaml) and for operators in psql.
-- * waifu_monitor: the exporter's login. It may EXECUTE those three functions and nothing
--   else of the game: no table, no view, no api or ops function; read-only sessions with
--   a short statement timeout. It is not a member of pg_monitor / pg_read_all_stats, so
--   other sessions' query texts stay hidden from it (an operator's ALTER ROLE ... PASSWORD
--   in pg_stat_activity, for one). What it still sees is what any login sees: the system
--   catalogs (the schema and function bodies, which hold no secret) and its own session.
-- * ops.help also lists the alerts (db/monitoring/alerts.yml): what each means and the
--   first thing to do.
-- depends: 0011.no-stall

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_monitor') THEN
        -- LOGIN without a password: set one with ALTER ROLE (password auth) or trust it locally.
        CREATE ROLE waifu_monitor LOGIN;
    END IF;
    -- A scrape that hangs is worse than a missing one: Prometheus marks the scrape failed
    -- and the alert on it fires. Nothing it runs writes.
    EXECUTE format('ALTER ROLE waifu_monitor IN DATABASE %I SET statement_timeout = %L', current_database(), '5s');
    EXECUTE format('ALTER ROLE waifu_monitor IN DATABASE %I SET lock_timeout = %L', current_database(), '1s');
    EXECUTE format('ALTER ROLE waifu_monitor IN DATABASE %I SET default_transaction_read_only = on',
                   current_database());
END
$$;
COMMENT ON ROLE waifu_monitor IS
    'The metrics exporter''s login: EXECUTE on ops.metrics, ops.metrics_cron and ops.metrics_outbox only.';
GRANT USAGE ON SCHEMA ops TO waifu_monitor;

-- The one-row figures ------------------------------------------------------------------------

-- A set of one row (RETURNS TABLE), not a record of OUT arguments: PL/Proxy's generated
-- wrappers (db/partitions.py) forward sets, but not a function returning a bare record.
CREATE FUNCTION ops.metrics()
    RETURNS TABLE (
        players bigint, waifus bigint, waifus_regenerating bigint,
        tick_last_duration_seconds double precision, tick_last_filled integer,
        tick_last_batches integer,
        tick_last_finished_age_seconds double precision,
        tick_runs_total bigint, tick_filled_total bigint, tick_notified_total bigint,
        outbox_rested_staged bigint,
        outbox_waiting bigint, outbox_oldest_age_seconds double precision,
        ledger_partitions integer, ledger_bytes bigint, ledger_expired_partitions integer,
        ledger_oldest_age_seconds double precision, ledger_retention_seconds double precision,
        ledger_inserted_rows_total bigint,
        database_bytes bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := clock_timestamp();
    keep interval := (SELECT c.ledger_retention FROM game.config AS c);
BEGIN
    players := (SELECT count(*) FROM game.players);
    waifus := (SELECT count(*) FROM game.waifus);
    -- Stored below the cap and not yet full by the clock: the index (full_at, id) answers.
    waifus_regenerating := (SELECT count(*) FROM game.waifus AS w WHERE w.full_at > extract(epoch FROM at));

    SELECT s.last_duration_ms / 1000.0, s.last_filled, s.last_batches,
           extract(epoch FROM at - s.last_finished_at)::double precision, s.runs, s.filled_total, s.notified_total
    INTO tick_last_duration_seconds, tick_last_filled, tick_last_batches,
         tick_last_finished_age_seconds, tick_runs_total, tick_filled_total, tick_notified_total
    FROM game.tick_state AS s;
    outbox_rested_staged := (SELECT coalesce(sum(r.waifus), 0) FROM game.rested_ranges AS r);

    -- The waiting rows are the partial index notifications_queue_idx: cheap however many
    -- finished rows the table keeps.
    SELECT count(*), greatest(coalesce(extract(epoch FROM at - min(n.created_at)), 0), 0)::double precision
    INTO outbox_waiting, outbox_oldest_age_seconds
    FROM game.notifications AS n
    WHERE n.sent_at IS NULL;

    -- Weekly partitions (ops.ledger): one whose whole week is older than the retention
    -- should have been dropped by the hourly job ledger-partitions.
    SELECT count(*)::integer, coalesce(sum(l.bytes), 0)::bigint,
           (count(*) FILTER (WHERE l.ends_at < at - keep))::integer,
           coalesce(extract(epoch FROM at - min(l.starts_at)), 0)::double precision
    INTO ledger_partitions, ledger_bytes, ledger_expired_partitions, ledger_oldest_age_seconds
    FROM ops.ledger AS l;
    ledger_retention_seconds := extract(epoch FROM keep)::double precision;
    -- Rows ever inserted into the ledger's partitions (statistics: they lag up to ~10 s,
    -- and a dropped partition takes its count with it, which Prometheus reads as a reset).
    ledger_inserted_rows_total := (
        SELECT coalesce(sum(st.n_tup_ins), 0)::bigint
        FROM pg_catalog.pg_inherits AS i
        JOIN pg_catalog.pg_stat_user_tables AS st ON st.relid = i.inhrelid
        WHERE i.inhparent = 'game.participations'::regclass);
    database_bytes := pg_catalog.pg_database_size(pg_catalog.current_database());
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION ops.metrics() IS
$$The database's figures for Prometheus (db/monitoring/queries.yaml) and operators: one row.
players, waifus, waifus_regenerating (stored below the cap); the restore tick's last complete run
(tick_last_duration_seconds, _filled, _batches; tick_last_finished_age_seconds: since it ended)
and its totals (tick_runs_total, tick_filled_total, tick_notified_total); outbox_waiting (rows not yet
finished), outbox_rested_staged (waifus whose "she is rested" the tick staged, not yet made rows; at
most) and outbox_oldest_age_seconds;
the ledger: partitions, bytes, ledger_expired_partitions (wholly older than the retention: the hourly
job should have dropped them), the oldest partition's age, the retention, rows ever inserted
(ledger_inserted_rows_total, from the statistics); database_bytes. Example: SELECT * FROM ops.metrics();$$;
REVOKE ALL ON FUNCTION ops.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.metrics() TO waifu_ops, waifu_monitor;

-- pg_cron's jobs -------------------------------------------------------------------------------

CREATE FUNCTION ops.metrics_cron()
    RETURNS TABLE (cron_job text, last_success_age_seconds double precision, last_run_seconds double precision,
                   last_failed integer, succeeded_1h bigint, failed_1h bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT j.jobname::text,
           -- Never succeeded: the time since the server started (a fresh cluster, or a job
           -- that always fails, still trips the alert once it is long enough).
           extract(epoch FROM clock_timestamp()
                              - coalesce(ok.end_time, pg_catalog.pg_postmaster_start_time()))::double precision,
           extract(epoch FROM last.end_time - last.start_time)::double precision,
           CASE WHEN last.status = 'failed' THEN 1 ELSE 0 END,
           (SELECT count(*) FROM cron.job_run_details AS d
            WHERE d.jobid = j.jobid AND d.status = 'succeeded' AND d.start_time > now() - interval '1 hour'),
           (SELECT count(*) FROM cron.job_run_details AS d
            WHERE d.jobid = j.jobid AND d.status = 'failed' AND d.start_time > now() - interval '1 hour')
    FROM cron.job AS j
    LEFT JOIN LATERAL (
        SELECT max(d.end_time) AS end_time FROM cron.job_run_details AS d
        WHERE d.jobid = j.jobid AND d.status = 'succeeded') AS ok ON true
    LEFT JOIN LATERAL (
        SELECT d.start_time, d.end_time, d.status FROM cron.job_run_details AS d
        WHERE d.jobid = j.jobid AND d.status IN ('succeeded', 'failed')
        ORDER BY d.start_time DESC NULLS LAST LIMIT 1) AS last ON true
    WHERE j.database = current_database() AND j.jobname IS NOT NULL
    ORDER BY 1;
END;
COMMENT ON FUNCTION ops.metrics_cron() IS
$$pg_cron's jobs of this database for Prometheus: one row per job (restore-energy is the tick).
last_success_age_seconds: since its last successful run ended (never: since the server started);
last_run_seconds: how long its last finished run took; last_failed: 1 if that run failed;
succeeded_1h, failed_1h: runs in the last hour. Example: SELECT * FROM ops.metrics_cron();$$;
REVOKE ALL ON FUNCTION ops.metrics_cron() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.metrics_cron() TO waifu_ops, waifu_monitor;

-- The outbox by outcome ------------------------------------------------------------------------

CREATE FUNCTION ops.metrics_outbox() RETURNS TABLE (outcome text, notifications bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- Every outcome, zeros included, so that each series exists from the first scrape.
    SELECT o.outcome, coalesce(c.n, 0)
    FROM unnest(ARRAY['waiting', 'sent', 'blocked', 'off', 'failed', 'expired', 'stale']) AS o(outcome)
    LEFT JOIN (SELECT coalesce(n.outcome, 'waiting') AS outcome, count(*) AS n
               FROM game.notifications AS n GROUP BY 1) AS c ON c.outcome = o.outcome
    ORDER BY 1;
END;
COMMENT ON FUNCTION ops.metrics_outbox() IS
$$The outbox's rows by outcome (waiting: not finished yet; sent, blocked, off, failed, expired, stale:
finished, kept for game.config.notification_retention). Reads the whole table: the exporter runs it
every few minutes (db/monitoring/queries.yaml). Example: SELECT * FROM ops.metrics_outbox();$$;
REVOKE ALL ON FUNCTION ops.metrics_outbox() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.metrics_outbox() TO waifu_ops, waifu_monitor;

-- The manual: functions, views, and the alerts -------------------------------------------------

CREATE OR REPLACE VIEW ops.help AS
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
UNION ALL
-- The alerts of db/monitoring/alerts.yml (a test keeps both lists equal) and the first
-- thing to do; README.md, "Operations", says more.
SELECT a.name, 'alert', NULL, NULL, a.description
FROM (VALUES
    ('WaifuTickNotRunning', 'The restore tick has not succeeded for 3 minutes: SELECT * FROM ops.cron_jobs; '
        || 'then ops.cron_failures. Energy is still right on every read; fills and "she is rested" wait.'),
    ('WaifuTickSlow', 'The last restore tick took over 10 s: SELECT * FROM ops.tick; (filled, batches); '
        || 'check autovacuum of game.waifus and the server''s load.'),
    ('WaifuOutboxStale', 'A notification has waited over 10 minutes: is a bot process with its sender up? '
        || 'Its log, waifu_notifier_* metrics; SELECT * FROM ops.metrics_outbox();'),
    ('WaifuErrorRate', 'Over 5% of updates ended in an error or an unavailable database for 5 minutes: '
        || 'the bot''s log (outcome error:*), waifu_db_errors_total by SQLSTATE.'),
    ('WaifuDatabaseUnreachable', 'The exporter cannot query the database (or is down): is PostgreSQL up? '
        || 'pg_isready; its log; disk space.'),
    ('WaifuBotDown', 'Prometheus cannot scrape a bot process: is it running? docker compose ps; its log.'),
    ('WaifuLedgerPastRetention', 'A ledger partition older than the retention is still there: '
        || 'SELECT * FROM ops.ledger; SELECT * FROM ops.cron_failures; then SELECT game.maintain_ledger();'),
    ('WaifuCronJobFailing', 'A pg_cron job failed in the last hour: SELECT * FROM ops.cron_failures;')
) AS a(name, description)
ORDER BY 2, 1;
COMMENT ON VIEW ops.help IS
    'The operator''s manual: every ops/api function and ops view with its arguments and first line of its comment, and every alert with the first thing to do.';
