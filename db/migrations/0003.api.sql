-- The bot's interface. Every function: SECURITY DEFINER with an empty search_path
-- (all names qualified), EXECUTE revoked from PUBLIC and granted right after it.
--
-- Errors (SQLSTATE; DETAIL is a JSON object with the numbers):
--   WF001 not enough energy      WF002 event unknown or not open now
--   WF003 event on cooldown      WF004 waifu not found or not this player's
--   WF005 player not registered  WF006 invalid argument
--   WF007 request key already used for a different action
-- depends: 0002.game-schema

CREATE FUNCTION game.check_text(name text, value text, max_length integer, required boolean)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF required AND (value IS NULL OR btrim(value) = '') THEN
        RAISE EXCEPTION '% is required', check_text.name
            USING ERRCODE = 'WF006', DETAIL = jsonb_build_object('argument', check_text.name)::text;
    END IF;
    IF length(value) > max_length THEN
        RAISE EXCEPTION '% is longer than % characters', check_text.name, max_length
            USING ERRCODE = 'WF006',
                  DETAIL = jsonb_build_object('argument', check_text.name, 'max_length', max_length,
                                              'length', length(value))::text;
    END IF;
END
$$;
COMMENT ON FUNCTION game.check_text(text, text, integer, boolean) IS 'Raises WF006 for a missing or too long text argument.';

CREATE FUNCTION game.require_player(telegram_id bigint) RETURNS game.players
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    p game.players;
BEGIN
    SELECT * INTO p FROM game.players AS pl WHERE pl.telegram_id = require_player.telegram_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'player % is not registered', require_player.telegram_id
            USING ERRCODE = 'WF005', DETAIL = jsonb_build_object('telegram_id', require_player.telegram_id)::text,
                  HINT = 'Call api.register_player first (the bot does this on /start).';
    END IF;
    RETURN p;
END
$$;
COMMENT ON FUNCTION game.require_player(bigint) IS 'The player row, or WF005.';

CREATE FUNCTION game.waifu_not_found(waifu_id bigint) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'waifu % not found', waifu_not_found.waifu_id
        USING ERRCODE = 'WF004', DETAIL = jsonb_build_object('waifu_id', waifu_not_found.waifu_id)::text;
END
$$;
COMMENT ON FUNCTION game.waifu_not_found(bigint) IS 'Raises WF004 (also for another player''s waifu: no leak).';

CREATE FUNCTION game.require_waifu(waifu_id bigint, owner_id bigint DEFAULT NULL) RETURNS game.waifus
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    w game.waifus;
BEGIN
    SELECT * INTO w FROM game.waifus AS x
    WHERE x.id = require_waifu.waifu_id
      AND (require_waifu.owner_id IS NULL OR x.owner_id = require_waifu.owner_id);
    IF NOT FOUND THEN
        IF require_waifu.owner_id IS NOT NULL THEN
            PERFORM game.require_player(require_waifu.owner_id);  -- WF005 before WF004
        END IF;
        PERFORM game.waifu_not_found(require_waifu.waifu_id);
    END IF;
    RETURN w;
END
$$;
COMMENT ON FUNCTION game.require_waifu(bigint, bigint) IS
    'The waifu (owned by owner_id when given), or WF005 (owner not registered) / WF004.';

-- api.player_profile -------------------------------------------------------------------
CREATE FUNCTION api.player_profile(telegram_id bigint, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    p game.players := game.require_player(player_profile.telegram_id);
BEGIN
    RETURN jsonb_build_object(
        'telegram_id', p.telegram_id,
        'username', p.username,
        'first_name', p.first_name,
        'language_code', p.language_code,
        'registered_at', p.registered_at,
        'waifus', coalesce((
            SELECT jsonb_agg(game.stats_json(w, game.regen(w.dynamic, player_profile.now), player_profile.now)
                             ORDER BY w.id)
            FROM game.waifus AS w
            WHERE w.owner_id = p.telegram_id), '[]'::jsonb));
END
$$;
REVOKE ALL ON FUNCTION api.player_profile(bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.player_profile(bigint, timestamptz) TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.player_profile(bigint, timestamptz) IS
$$The player and every waifu's stats (effective as of now).
Returns {telegram_id, username, first_name, language_code, registered_at, waifus: [api.waifu_stats shape]}.
Errors: WF005 not registered.$$;

-- api.register_player ------------------------------------------------------------------
CREATE FUNCTION api.register_player(telegram_id bigint, username text, first_name text, language_code text)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
    IF register_player.telegram_id IS NULL OR register_player.telegram_id <= 0 THEN
        RAISE EXCEPTION 'telegram_id must be a positive integer'
            USING ERRCODE = 'WF006', DETAIL = jsonb_build_object('argument', 'telegram_id',
                                                                 'value', register_player.telegram_id)::text;
    END IF;
    PERFORM game.check_text('username', register_player.username, 64, false);
    PERFORM game.check_text('first_name', register_player.first_name, 256, false);
    PERFORM game.check_text('language_code', register_player.language_code, 16, false);

    INSERT INTO game.players AS p (telegram_id, username, first_name, language_code)
    VALUES (register_player.telegram_id, register_player.username, register_player.first_name,
            register_player.language_code)
    ON CONFLICT ON CONSTRAINT players_pkey DO UPDATE
        SET username = excluded.username, first_name = excluded.first_name,
            language_code = excluded.language_code, updated_at = pg_catalog.now()
        WHERE (p.username, p.first_name, p.language_code)
              IS DISTINCT FROM (excluded.username, excluded.first_name, excluded.language_code);
    RETURN api.player_profile(register_player.telegram_id);
END
$$;
REVOKE ALL ON FUNCTION api.register_player(bigint, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.register_player(bigint, text, text, text) TO waifu_bot;
COMMENT ON FUNCTION api.register_player(bigint, text, text, text) IS
$$Register a Telegram user, or refresh their names (idempotent upsert).
Returns the profile (api.player_profile shape).
Errors: WF006 telegram_id not positive, or a text too long.$$;

-- api.waifu_templates ------------------------------------------------------------------
CREATE FUNCTION api.waifu_templates() RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ''
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

-- api.adopt_waifu ----------------------------------------------------------------------
CREATE FUNCTION api.adopt_waifu(telegram_id bigint, template_code text, request_key text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    t game.waifu_templates;
    existing game.waifus;
    new_id bigint;
BEGIN
    PERFORM game.require_player(adopt_waifu.telegram_id);
    PERFORM game.check_text('request_key', adopt_waifu.request_key, 128, false);
    SELECT * INTO t FROM game.waifu_templates AS wt WHERE wt.code = adopt_waifu.template_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown waifu template "%"', adopt_waifu.template_code
            USING ERRCODE = 'WF006', DETAIL = jsonb_build_object('argument', 'template_code',
                                                                 'value', adopt_waifu.template_code)::text,
                  HINT = 'api.waifu_templates() lists the codes.';
    END IF;

    IF adopt_waifu.request_key IS NOT NULL THEN
        INSERT INTO game.waifus (owner_id, template_code, name, dynamic, adopt_key)
        VALUES (adopt_waifu.telegram_id, t.code, t.name, game.new_dynamic(pg_catalog.now()), adopt_waifu.request_key)
        ON CONFLICT ON CONSTRAINT waifus_adopt_key_once DO NOTHING
        RETURNING id INTO new_id;
        IF new_id IS NOT NULL THEN
            RETURN new_id;
        END IF;
        -- A retry of an adoption already made: answer with the same waifu.
        SELECT * INTO existing FROM game.waifus AS w
        WHERE w.owner_id = adopt_waifu.telegram_id AND w.adopt_key = adopt_waifu.request_key;
        IF existing.template_code <> t.code THEN
            RAISE EXCEPTION 'request key "%" was already used to adopt "%"', adopt_waifu.request_key,
                    existing.template_code
                USING ERRCODE = 'WF007', DETAIL = jsonb_build_object('request_key', adopt_waifu.request_key,
                                                                     'waifu_id', existing.id)::text;
        END IF;
        RETURN existing.id;
    END IF;

    INSERT INTO game.waifus (owner_id, template_code, name, dynamic)
    VALUES (adopt_waifu.telegram_id, t.code, t.name, game.new_dynamic(pg_catalog.now()))
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION api.adopt_waifu(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.adopt_waifu(bigint, text, text) TO waifu_bot;
COMMENT ON FUNCTION api.adopt_waifu(bigint, text, text) IS
$$Adopt a starter waifu (energy 100, mood 50, loyalty 50, xp 0); returns the new waifu's id.
request_key (optional): the same key again returns the same waifu instead of a second one.
Errors: WF005 not registered; WF006 unknown template; WF007 key used for another template.$$;

-- api.waifu_stats ----------------------------------------------------------------------
CREATE FUNCTION api.waifu_stats(waifu_id bigint, now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    w game.waifus := game.require_waifu(waifu_stats.waifu_id);
BEGIN
    RETURN game.stats_json(w, game.regen(w.dynamic, waifu_stats.now), waifu_stats.now);
END
$$;
REVOKE ALL ON FUNCTION api.waifu_stats(bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.waifu_stats(bigint, timestamptz) TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.waifu_stats(bigint, timestamptz) IS
$$Stats of one waifu, effective as of now (energy restored up to that moment).
Returns {waifu_id, owner_id, name, template_code, xp, level, level_xp, next_level_xp, energy,
max_energy, max_stat (the cap of mood and loyalty), mood, loyalty, next_energy_at, full_energy_at, as_of};
the two times are null when full.
Errors: WF004 waifu not found.$$;

-- api.player_waifu_stats ---------------------------------------------------------------
CREATE FUNCTION api.player_waifu_stats(telegram_id bigint, waifu_id bigint, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    w game.waifus := game.require_waifu(player_waifu_stats.waifu_id, player_waifu_stats.telegram_id);
BEGIN
    RETURN game.stats_json(w, game.regen(w.dynamic, player_waifu_stats.now), player_waifu_stats.now);
END
$$;
REVOKE ALL ON FUNCTION api.player_waifu_stats(bigint, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.player_waifu_stats(bigint, bigint, timestamptz) TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.player_waifu_stats(bigint, bigint, timestamptz) IS
$$api.waifu_stats for a waifu this player owns (what a player-facing client should call).
Errors: WF005 not registered; WF004 waifu not found or another player's.$$;

-- api.available_events -----------------------------------------------------------------
CREATE FUNCTION game.events_for(w game.waifus, at timestamptz) RETURNS jsonb
    LANGUAGE plpgsql STABLE
AS $$
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
                    greatest(0, ceil(extract(epoch FROM (c.last_at + e.cooldown - events_for.at))))::integer,
                'available_at', CASE WHEN c.last_at + e.cooldown > events_for.at THEN c.last_at + e.cooldown END,
                'starts_at', e.starts_at,
                'ends_at', e.ends_at,
                'enough_energy', (game.regen(events_for.w.dynamic, events_for.at) ->> 'energy')::integer >= e.energy_cost)
                ORDER BY e.energy_cost, e.code), '[]'::jsonb)
        FROM game.events AS e
        LEFT JOIN LATERAL (
            SELECT max(p.participated_at) AS last_at
            FROM game.participations AS p
            WHERE p.waifu_id = events_for.w.id AND p.event_code = e.code) AS c ON true
        WHERE (e.starts_at IS NULL OR e.starts_at <= events_for.at)
          AND (e.ends_at IS NULL OR events_for.at < e.ends_at));
END
$$;
COMMENT ON FUNCTION game.events_for(game.waifus, timestamptz) IS 'Open events with this waifu''s cooldowns.';

CREATE FUNCTION api.available_events(waifu_id bigint, now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    w game.waifus := game.require_waifu(available_events.waifu_id);
BEGIN
    RETURN game.events_for(w, available_events.now);
END
$$;
REVOKE ALL ON FUNCTION api.available_events(bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.available_events(bigint, timestamptz) TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.available_events(bigint, timestamptz) IS
$$Events open now, cheapest first, with this waifu's cooldown.
Returns [{code, title, energy_cost, xp_reward, mood_delta, loyalty_delta, cooldown_seconds,
cooldown_remaining_seconds, available_at, starts_at, ends_at, enough_energy}].
Errors: WF004 waifu not found.$$;

CREATE FUNCTION api.player_available_events(telegram_id bigint, waifu_id bigint, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    w game.waifus := game.require_waifu(player_available_events.waifu_id, player_available_events.telegram_id);
BEGIN
    RETURN game.events_for(w, player_available_events.now);
END
$$;
REVOKE ALL ON FUNCTION api.player_available_events(bigint, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.player_available_events(bigint, bigint, timestamptz) TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.player_available_events(bigint, bigint, timestamptz) IS
$$api.available_events for a waifu this player owns.
Errors: WF005 not registered; WF004 waifu not found or another player's.$$;

-- api.participate_in_event -------------------------------------------------------------
CREATE FUNCTION api.participate_in_event(telegram_id bigint, waifu_id bigint, event_code text,
                                         request_key text, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    w game.waifus;
    e game.events;
    prior game.participations;
    before jsonb;
    after jsonb;
    last_at timestamptz;
    energy_now integer;
    level_before integer;
    level_after integer;
    result jsonb;
BEGIN
    IF participate_in_event.request_key IS NULL OR btrim(participate_in_event.request_key) = ''
       OR length(participate_in_event.request_key) > 128 THEN
        PERFORM game.check_text('request_key', participate_in_event.request_key, 128, true);
    END IF;

    -- Lock the waifu first: everything below sees no concurrent change to it, and a
    -- concurrent retry with the same key waits here, then finds the ledger row.
    SELECT * INTO w FROM game.waifus AS x
    WHERE x.id = participate_in_event.waifu_id AND x.owner_id = participate_in_event.telegram_id
    FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM game.require_waifu(participate_in_event.waifu_id, participate_in_event.telegram_id);  -- raises
    END IF;

    SELECT * INTO prior FROM game.participations AS p
    WHERE p.telegram_id = participate_in_event.telegram_id AND p.request_key = participate_in_event.request_key;
    IF FOUND THEN
        IF prior.waifu_id <> participate_in_event.waifu_id OR prior.event_code <> participate_in_event.event_code THEN
            RAISE EXCEPTION 'request key "%" was already used for another action', participate_in_event.request_key
                USING ERRCODE = 'WF007',
                      DETAIL = jsonb_build_object('request_key', prior.request_key, 'waifu_id', prior.waifu_id,
                                                  'event_code', prior.event_code)::text;
        END IF;
        RETURN prior.result || jsonb_build_object('replayed', true);
    END IF;

    SELECT * INTO e FROM game.events AS ev WHERE ev.code = participate_in_event.event_code;
    IF NOT FOUND
       OR e.starts_at > participate_in_event.now
       OR e.ends_at <= participate_in_event.now THEN
        RAISE EXCEPTION 'event "%" is not open', participate_in_event.event_code
            USING ERRCODE = 'WF002',
                  DETAIL = jsonb_build_object('event_code', participate_in_event.event_code,
                                              'starts_at', e.starts_at, 'ends_at', e.ends_at)::text;
    END IF;

    IF e.cooldown > interval '0' THEN
        SELECT max(p.participated_at) INTO last_at FROM game.participations AS p
        WHERE p.waifu_id = participate_in_event.waifu_id AND p.event_code = e.code;
    END IF;
    IF last_at + e.cooldown > participate_in_event.now THEN
        RAISE EXCEPTION 'event "%" is on cooldown for this waifu', e.code
            USING ERRCODE = 'WF003',
                  DETAIL = jsonb_build_object(
                      'event_code', e.code,
                      'available_at', last_at + e.cooldown,
                      'remaining_seconds',
                          ceil(extract(epoch FROM (last_at + e.cooldown - participate_in_event.now)))::integer)::text;
    END IF;

    before := game.regen(w.dynamic, participate_in_event.now);
    energy_now := (before ->> 'energy')::integer;
    IF energy_now < e.energy_cost THEN
        RAISE EXCEPTION 'not enough energy: "%" needs %, the waifu has %', e.code, e.energy_cost, energy_now
            USING ERRCODE = 'WF001',
                  DETAIL = jsonb_build_object(
                      'energy_needed', e.energy_cost,
                      'energy', energy_now,
                      'enough_at', to_timestamp(((before ->> 'last_restore')::numeric
                          + game.energy_regen_seconds() * (e.energy_cost - energy_now))::double precision))::text;
    END IF;

    -- The one write: restore and spend in a single statement on the locked row (`before`
    -- is that row's stats restored to now; passing it, not the column, lets the planner
    -- inline game.apply_event).
    UPDATE game.waifus AS x
    SET dynamic = game.apply_event(before, e, participate_in_event.now)
    WHERE x.id = w.id
    RETURNING x.* INTO w;
    after := w.dynamic;

    level_before := game.level_for_xp((before ->> 'xp')::bigint);
    level_after := game.level_for_xp((after ->> 'xp')::bigint);
    result := game.stats_json(w, after, participate_in_event.now) || jsonb_build_object(
        'event_code', e.code,
        'event_title', e.title,
        'request_key', participate_in_event.request_key,
        'participated_at', participate_in_event.now,
        'changes', jsonb_build_object(
            'energy', (after ->> 'energy')::integer - energy_now,
            'xp', (after ->> 'xp')::bigint - (before ->> 'xp')::bigint,
            'mood', (after ->> 'mood')::integer - (before ->> 'mood')::integer,
            'loyalty', (after ->> 'loyalty')::integer - (before ->> 'loyalty')::integer,
            'level_before', level_before,
            'level_after', level_after,
            'leveled_up', level_after > level_before),
        'replayed', false);

    INSERT INTO game.participations AS p (telegram_id, waifu_id, event_code, request_key, participated_at,
                                          energy_spent, xp_gained, mood_change, loyalty_change, result)
    VALUES (participate_in_event.telegram_id, w.id, e.code, participate_in_event.request_key,
            participate_in_event.now, e.energy_cost, (result #>> '{changes,xp}')::integer,
            (result #>> '{changes,mood}')::integer, (result #>> '{changes,loyalty}')::integer, result)
    ON CONFLICT ON CONSTRAINT participations_request_once DO NOTHING;
    IF NOT FOUND THEN
        -- The same key committed meanwhile for another waifu (we locked a different row).
        RAISE EXCEPTION 'request key "%" was already used for another action', participate_in_event.request_key
            USING ERRCODE = 'WF007', DETAIL = jsonb_build_object('request_key', participate_in_event.request_key)::text;
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION api.participate_in_event(bigint, bigint, text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.participate_in_event(bigint, bigint, text, text, timestamptz) TO waifu_bot;
COMMENT ON FUNCTION api.participate_in_event(bigint, bigint, text, text, timestamptz) IS
$$Take part in an event: restore pending energy, pay the cost, add XP, move mood and loyalty
(clamped to 0..100), record it in the ledger - one transaction, waifu row locked.
request_key: the same key again returns the recorded result ("replayed": true) and changes nothing.
Returns the api.waifu_stats shape plus {event_code, event_title, request_key, participated_at,
changes: {energy, xp, mood, loyalty, level_before, level_after, leveled_up}, replayed}.
Errors (DETAIL is JSON): WF001 not enough energy {energy_needed, energy, enough_at};
WF002 event unknown or not open; WF003 cooldown {available_at, remaining_seconds};
WF004 waifu not found or another player's; WF005 not registered; WF006 missing/too long request_key;
WF007 request key already used for a different action.$$;

-- api.restore_energy -------------------------------------------------------------------
CREATE FUNCTION api.restore_energy(now timestamptz DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    updated integer;
BEGIN
    -- One tick at a time: two overlapping ticks (pg_cron's and an operator's manual
    -- one) would lock the due rows in different orders and could deadlock. A second
    -- tick waits here, then finds only what is still due.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('waifu:api.restore_energy', 0));
    -- Only due waifus: below the cap and at least one whole interval since their clock
    -- (the partial index game.waifus_energy_due_idx answers this).
    UPDATE game.waifus AS w
    SET dynamic = game.regen(w.dynamic, restore_energy.now)
    WHERE (w.dynamic ->> 'energy')::integer < game.max_energy()
      AND (w.dynamic ->> 'last_restore')::numeric
          <= extract(epoch FROM restore_energy.now) - game.energy_regen_seconds();
    GET DIAGNOSTICS updated = ROW_COUNT;
    RETURN updated;
END
$$;
REVOKE ALL ON FUNCTION api.restore_energy(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.restore_energy(timestamptz) TO waifu_ops;
COMMENT ON FUNCTION api.restore_energy(timestamptz) IS
$$Store the energy restored up to now for every due waifu; returns how many were updated.
pg_cron runs it every minute (job restore-energy). Idempotent for the same now; catches up
exactly after an outage. Reads never depend on it: they compute effective energy themselves.$$;
