-- Back to 0013: no card photo cache, no group language, the stall rule of 0006, a coin ledger kept whole.
-- Opening rows written by the retention stay (their rows are gone): the reason check is put back
-- NOT VALID so that they do not stop the rollback; new rows are checked as before.

DO $$
BEGIN
    PERFORM cron.unschedule(j.jobid) FROM cron.job AS j WHERE j.jobname = 'coin-ledger-retention';
END
$$;

DROP FUNCTION game.trim_coin_ledger(integer);
DROP INDEX game.coin_ledger_at_brin;
ALTER TABLE game.coin_ledger DROP CONSTRAINT coin_ledger_reason_check,
    ADD CONSTRAINT coin_ledger_reason_check
        CHECK (reason IN ('event', 'daily', 'purchase', 'group_event', 'correction')) NOT VALID;
COMMENT ON TABLE game.coin_ledger IS
$$Every change of a player's coins, written with it: delta, the balance after it, why (event, daily, purchase,
group_event, correction) and what (the request key, or the group event's id). Kept whole: the sum of a
player's deltas is their wallet.$$;

DROP VIEW ops.cron_jobs;
CREATE VIEW ops.cron_jobs AS
SELECT j.jobid, j.jobname, j.schedule, j.command, j.active, j.username AS run_as,
       last.start_time AS last_start, last.end_time AS last_end, last.status AS last_status,
       last.return_message AS last_message,
       (SELECT count(*) FROM cron.job_run_details AS d
        WHERE d.jobid = j.jobid AND d.status = 'failed' AND d.start_time > now() - interval '24 hours')
           AS failures_24h,
       (SELECT count(*) FROM cron.job_run_details AS d
        WHERE d.jobid = j.jobid AND d.status = 'succeeded' AND d.start_time > now() - interval '1 hour')
           AS successes_1h,
       CASE
           WHEN NOT j.active THEN 'inactive'
           WHEN last.start_time IS NULL THEN 'never ran'
           WHEN last.status = 'failed' THEN 'failing'
           WHEN j.jobname = 'restore-energy' AND last.start_time < now() - interval '3 minutes' THEN 'stalled'
           WHEN j.jobname = 'ledger-partitions' AND last.start_time < now() - interval '2 days' THEN 'stalled'
           ELSE 'ok'
       END AS health
FROM cron.job AS j
LEFT JOIN LATERAL (
    SELECT d.start_time, d.end_time, d.status, d.return_message
    FROM cron.job_run_details AS d
    WHERE d.jobid = j.jobid
    ORDER BY d.start_time DESC NULLS LAST
    LIMIT 1) AS last ON true;
COMMENT ON VIEW ops.cron_jobs IS
    'pg_cron jobs, the role each runs as, their last run and failure counts; health: ok | failing | stalled | never ran | inactive.';
GRANT SELECT ON ops.cron_jobs TO waifu_ops;
DROP FUNCTION ops.set_cron_expectation(text, interval);
DROP TABLE game.cron_expectations;

DROP FUNCTION api.group_languages(bigint[]);
DROP FUNCTION api.set_group_language(bigint, bigint, text, boolean, timestamptz);
ALTER TABLE game.groups DROP COLUMN language;

DROP FUNCTION ops.forget_card_photos(bigint);
DROP VIEW ops.card_photos;
DROP FUNCTION api.remember_card_photo(bigint, text, text, text, text, text);
DROP FUNCTION api.stat_card(bigint, bigint, bigint, timestamptz);
DROP FUNCTION game.card_photo_bots();
DROP TABLE game.card_photos;
