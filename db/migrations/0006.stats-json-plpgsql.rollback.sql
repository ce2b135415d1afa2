-- Back to the SQL version of 0002.game-schema (same text).
CREATE OR REPLACE FUNCTION game.stats_json(w game.waifus, dynamic jsonb, at timestamptz) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
    SELECT jsonb_build_object(
        'waifu_id', w.id,
        'owner_id', w.owner_id,
        'name', w.name,
        'template_code', w.template_code,
        'xp', s.xp,
        'level', s.level,
        'level_xp', game.level_start_xp(s.level),
        'next_level_xp', game.level_start_xp(s.level + 1),
        'energy', s.energy,
        'max_energy', game.max_energy(),
        'mood', (dynamic ->> 'mood')::integer,
        'loyalty', (dynamic ->> 'loyalty')::integer,
        'next_energy_at', CASE WHEN s.energy < game.max_energy()
            THEN to_timestamp((s.clock + game.energy_regen_seconds())::double precision) END,
        'full_energy_at', CASE WHEN s.energy < game.max_energy()
            THEN to_timestamp((s.clock + game.energy_regen_seconds() * (game.max_energy() - s.energy))::double precision) END,
        'as_of', at)
    FROM (SELECT (dynamic ->> 'xp')::bigint AS xp,
                 game.level_for_xp((dynamic ->> 'xp')::bigint) AS level,
                 (dynamic ->> 'energy')::integer AS energy,
                 (dynamic ->> 'last_restore')::numeric AS clock) AS s
);
