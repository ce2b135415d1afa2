-- pg_cron jobs. cron.schedule with a job name is an upsert, so re-running this never
-- creates a duplicate job (duplicates would double the regeneration rate).
-- (Inside DO blocks only so that yoyo prints no result rows.)
-- depends: 0004.ops

DO $$
BEGIN
    PERFORM cron.schedule('restore-energy', '* * * * *', 'SELECT api.restore_energy()');
    -- pg_cron never cleans its run log; a per-minute job adds 1,440 rows a day.
    PERFORM cron.schedule('purge-cron-history', '17 3 * * *',
        $cmd$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '14 days'$cmd$);
END
$$;
