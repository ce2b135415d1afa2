-- game.stats_json in PL/pgSQL: the same card, the same signature and result, cheaper.
--
-- The SQL version's body is a sub-select, so PostgreSQL never inlines it and plans it
-- again on every call (SQL functions keep no plan across queries). Every read and
-- action builds cards, so that planning was most of their cost: api.player_profile
-- with two waifus took ~290 us, ~45 us in PL/pgSQL (whose plans are cached per
-- session); ops.waifus over 4,000 waifus went from ~250 ms to ~35 ms.
-- CREATE OR REPLACE keeps the grants (waifu_ops) and the comment.
-- depends: 0005.cron-jobs

CREATE OR REPLACE FUNCTION game.stats_json(w game.waifus, dynamic jsonb, at timestamptz) RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    xp bigint := (stats_json.dynamic ->> 'xp')::bigint;
    level integer := game.level_for_xp(xp);
    energy integer := (stats_json.dynamic ->> 'energy')::integer;
    clock numeric := (stats_json.dynamic ->> 'last_restore')::numeric;
BEGIN
    RETURN jsonb_build_object(
        'waifu_id', stats_json.w.id,
        'owner_id', stats_json.w.owner_id,
        'name', stats_json.w.name,
        'template_code', stats_json.w.template_code,
        'xp', xp,
        'level', level,
        'level_xp', game.level_start_xp(level),
        'next_level_xp', game.level_start_xp(level + 1),
        'energy', energy,
        'max_energy', game.max_energy(),
        'mood', (stats_json.dynamic ->> 'mood')::integer,
        'loyalty', (stats_json.dynamic ->> 'loyalty')::integer,
        'next_energy_at', CASE WHEN energy < game.max_energy()
            THEN to_timestamp((clock + game.energy_regen_seconds())::double precision) END,
        'full_energy_at', CASE WHEN energy < game.max_energy()
            THEN to_timestamp((clock + game.energy_regen_seconds() * (game.max_energy() - energy))::double precision) END,
        'as_of', stats_json.at);
END
$$;
