DO $$
BEGIN
    PERFORM cron.unschedule(j.jobid) FROM cron.job AS j WHERE j.jobname = 'purge-player-history';
END
$$;
DROP FUNCTION game.purge_player_history(timestamptz);
DROP FUNCTION api.finish_notifications(text, bigint[], text, integer, timestamptz);
DROP FUNCTION api.claim_notifications(text, integer, integer, timestamptz);
DROP FUNCTION api.claim_daily(bigint, text, timestamptz);
DROP FUNCTION game.apply_daily(jsonb, game.daily_rewards);
DROP FUNCTION api.set_player_setting(bigint, text, text, timestamptz);
DROP FUNCTION api.player_settings(bigint, timestamptz);
DROP FUNCTION game.settings_json(game.players, timestamptz);
DROP FUNCTION game.daily_status(game.players, timestamptz);
DROP TABLE game.daily_claims;
DROP FUNCTION game.daily_reward(integer);
DROP TABLE game.daily_rewards;
DROP FUNCTION game.day_start(text, date);
DROP FUNCTION game.local_day(text, timestamptz);
CREATE INDEX notifications_pending_idx ON game.notifications (available_at) WHERE sent_at IS NULL;
DROP INDEX game.notifications_queue_idx;
ALTER TABLE game.notifications DROP COLUMN outcome;
