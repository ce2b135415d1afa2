DO $$
BEGIN
    PERFORM cron.unschedule(j.jobid) FROM cron.job AS j
    WHERE j.jobname IN ('restore-energy', 'purge-cron-history');
END
$$;
