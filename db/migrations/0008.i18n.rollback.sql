-- Back to 0007: no translations; the functions 0008 changed as 0006 left them (0007 does not touch them).

DROP VIEW ops.translations;
DROP FUNCTION ops.delete_translation(text, text, text);
DROP FUNCTION ops.set_event_translation(text, text, text);
DROP FUNCTION ops.set_template_translation(text, text, text, text);
DROP FUNCTION api.player_language(bigint);

DROP FUNCTION api.waifu_templates(text);
CREATE FUNCTION api.waifu_templates() RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((
        SELECT jsonb_agg(jsonb_build_object('code', t.code, 'name', t.name, 'description', t.description)
                         ORDER BY t.name)
        FROM game.waifu_templates AS t), '[]'::jsonb);
END
$$;
REVOKE ALL ON FUNCTION api.waifu_templates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.waifu_templates() TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.waifu_templates() IS
$$The starter waifus a player can adopt: [{code, name, description}], by name.$$;

CREATE OR REPLACE FUNCTION api.adopt_waifu(telegram_id bigint, template_code text, request_key text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t game.waifu_templates;
    existing game.waifus;
    new_id bigint;
BEGIN
    PERFORM game.check_request_key(adopt_waifu.request_key, false);
    -- The player's row lock serialises their adoptions: the collection check below
    -- cannot race with another adoption of theirs.
    PERFORM game.require_player(adopt_waifu.telegram_id);
    PERFORM 1 FROM game.players AS p WHERE p.telegram_id = adopt_waifu.telegram_id FOR UPDATE;
    SELECT * INTO t FROM game.waifu_templates AS wt WHERE wt.code = adopt_waifu.template_code;
    IF NOT FOUND THEN
        PERFORM game.invalid_argument('template_code', adopt_waifu.template_code,
            format('unknown waifu template "%s" (api.waifu_templates() lists the codes)', adopt_waifu.template_code));
    END IF;

    IF adopt_waifu.request_key IS NOT NULL THEN
        SELECT * INTO existing FROM game.waifus AS w
        WHERE w.owner_id = adopt_waifu.telegram_id AND w.adopt_key = adopt_waifu.request_key;
        IF FOUND THEN
            -- A retry of an adoption already made: answer with the same waifu.
            IF existing.template_code <> t.code THEN
                RAISE EXCEPTION 'request key "%" was already used to adopt "%"', adopt_waifu.request_key,
                        existing.template_code
                    USING ERRCODE = 'WF007', DETAIL = jsonb_build_object('request_key', adopt_waifu.request_key,
                                                                         'waifu_id', existing.id)::text;
            END IF;
            RETURN existing.id;
        END IF;
    END IF;

    SELECT * INTO existing FROM game.waifus AS w
    WHERE w.owner_id = adopt_waifu.telegram_id AND w.template_code = t.code;
    IF FOUND THEN
        RAISE EXCEPTION 'player % already has "%"', adopt_waifu.telegram_id, t.code
            USING ERRCODE = 'WF008',
                  DETAIL = jsonb_build_object('template_code', t.code, 'waifu_id', existing.id,
                                              'limit', game.templates_per_player())::text;
    END IF;

    INSERT INTO game.waifus (owner_id, template_code, name, dynamic, adopt_key)
    VALUES (adopt_waifu.telegram_id, t.code, t.name, game.new_dynamic(now()), adopt_waifu.request_key)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION api.adopt_waifu(bigint, text, text) IS
$$Adopt a starter waifu (full energy, starting mood and loyalty, xp 0); returns the new waifu's id.
A player adopts each template once (a collection).
request_key (optional): the same key again returns the same waifu instead of a second one.
Errors: WF005 not registered; WF006 bad argument or unknown template; WF007 key used for another
template; WF008 template already adopted {template_code, waifu_id, limit}.$$;

CREATE OR REPLACE FUNCTION api.player_profile(telegram_id bigint, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(player_profile.now);
    p game.players := game.require_player(player_profile.telegram_id);
BEGIN
    RETURN jsonb_build_object(
        'telegram_id', p.telegram_id,
        'username', p.username,
        'first_name', p.first_name,
        'language_code', p.language_code,
        'registered_at', p.registered_at,
        'waifus', coalesce((
            SELECT jsonb_agg(game.stats_json(w, game.regen(w.dynamic, at), at) ORDER BY w.id)
            FROM game.waifus AS w
            WHERE w.owner_id = p.telegram_id), '[]'::jsonb));
END
$$;
COMMENT ON FUNCTION api.player_profile(bigint, timestamptz) IS
$$The player and every waifu's stats (effective as of now).
Returns {telegram_id, username, first_name, language_code, registered_at, waifus: [api.waifu_stats shape]}.
Errors: WF005 not registered.$$;

CREATE OR REPLACE FUNCTION game.participation_json(w game.waifus, dynamic jsonb, at timestamptz, p game.participations,
                                        event_title text, replayed boolean) RETURNS jsonb
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN game.stats_json(participation_json.w, participation_json.dynamic, participation_json.at)
        || jsonb_build_object(
            'event_code', participation_json.p.event_code,
            'event_title', participation_json.event_title,
            'request_key', participation_json.p.request_key,
            'participated_at', participation_json.p.participated_at,
            'changes', jsonb_build_object(
                'energy', -participation_json.p.energy_spent,
                'xp', participation_json.p.xp_gained,
                'mood', participation_json.p.mood_change,
                'loyalty', participation_json.p.loyalty_change,
                'level_before', participation_json.p.level_before,
                'level_after', participation_json.p.level_after,
                'leveled_up', participation_json.p.level_after > participation_json.p.level_before),
            'replayed', participation_json.replayed);
END
$$;
COMMENT ON FUNCTION game.participation_json(game.waifus, jsonb, timestamptz, game.participations, text, boolean) IS
    'Answer of api.participate_in_event: stats card + {event_code, event_title, request_key, participated_at, changes, replayed}.';

CREATE OR REPLACE FUNCTION game.events_for(w game.waifus, at timestamptz) RETURNS jsonb
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    energy integer := (game.regen(events_for.w.dynamic, events_for.at) ->> 'energy')::integer;
BEGIN
    -- PL/pgSQL rather than a SQL body: a SQL function with a sub-select is planned again
    -- on every call; PL/pgSQL caches the plan per session.
    RETURN (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                'code', e.code,
                'title', e.title,
                'energy_cost', e.energy_cost,
                'xp_reward', e.xp_reward,
                'mood_delta', e.mood_delta,
                'loyalty_delta', e.loyalty_delta,
                'cooldown_seconds', extract(epoch FROM e.cooldown)::integer,
                'cooldown_remaining_seconds',
                    greatest(0, ceil(extract(epoch FROM (c.ends_at - events_for.at))))::integer,
                'available_at', CASE WHEN c.ends_at > events_for.at THEN c.ends_at END,
                'starts_at', e.starts_at,
                'ends_at', e.ends_at,
                'enough_energy', energy >= e.energy_cost)
                ORDER BY e.energy_cost, e.code), '[]'::jsonb)
        FROM game.events AS e
        CROSS JOIN LATERAL (SELECT game.cooldown_ends_at(events_for.w.last_played, e) AS ends_at) AS c
        WHERE game.event_is_open(e, events_for.at));
END
$$;
COMMENT ON FUNCTION game.events_for(game.waifus, timestamptz) IS 'Open events with this waifu''s cooldowns.';

DROP TABLE game.event_translations;
DROP TABLE game.template_translations;
DROP FUNCTION game.check_language(text);
DROP FUNCTION game.player_language(bigint);
DROP FUNCTION game.effective_language(text, text);
DROP FUNCTION game.languages();
