SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname IN ('restore-energy', 'purge-cron-history');
