-- pg_cron jobs. cron.schedule with a job name is an upsert, so re-running this never
-- creates a duplicate job (duplicates would double the regeneration rate).
-- depends: 0004.ops

SELECT cron.schedule('restore-energy', '* * * * *', 'SELECT api.restore_energy()');

-- pg_cron never cleans its run log; a per-minute job adds 1,440 rows a day.
SELECT cron.schedule('purge-cron-history', '17 3 * * *',
    $$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '14 days'$$);
