REVOKE EXECUTE ON FUNCTION game.max_energy(), game.max_stat(), game.energy_regen_seconds(),
    game.level_for_xp(bigint), game.level_start_xp(integer), game.regen(jsonb, timestamptz),
    game.stats_json(game.waifus, jsonb, timestamptz) FROM waifu_ops;
DROP VIEW ops.cron_failures;
DROP VIEW ops.cron_jobs;
DROP VIEW ops.stat_corrections;
DROP VIEW ops.recent_participations;
DROP VIEW ops.events;
DROP VIEW ops.waifus;
DROP VIEW ops.overview;
DROP FUNCTION ops.set_stat(bigint, text, integer, text);
DROP FUNCTION ops.close_event(text, timestamptz);
DROP FUNCTION ops.create_event(text, text, integer, integer, integer, integer, interval, timestamptz, timestamptz);
DROP FUNCTION game.invalid_argument(text, text, text);
DROP TABLE game.stat_corrections;
