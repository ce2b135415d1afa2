-- Undo 0006: back to the 0005 schema. The functions, views and jobs below are those of
-- 0002-0005, copied. The ledger comes back unpartitioned; its `result` column is rebuilt
-- from the compact rows (the stats card of each answer is not kept any more, so a replay
-- after this rollback answers with the event and its changes only). Waifus keep their
-- stats; a collection of several templates stays (0005 had no limit).

DO $$
BEGIN
    PERFORM cron.unschedule(j.jobid) FROM cron.job AS j
    WHERE j.jobname IN ('restore-energy', 'purge-cron-history', 'ledger-partitions');
END
$$;

DROP VIEW ops.help;
DROP VIEW ops.ledger;
DROP VIEW ops.config;
DROP VIEW ops.cron_failures;
DROP VIEW ops.cron_jobs;
DROP VIEW ops.recent_participations;
DROP VIEW ops.events;
DROP VIEW ops.overview;

-- The ledger ---------------------------------------------------------------------------
ALTER TABLE game.participations RENAME TO participations_v2;
CREATE TABLE game.participations (
    telegram_id     bigint NOT NULL,
    waifu_id        bigint NOT NULL REFERENCES game.waifus ON DELETE CASCADE,
    event_code      text NOT NULL,
    request_key     text NOT NULL,
    participated_at timestamptz NOT NULL,
    energy_spent    integer NOT NULL,
    xp_gained       integer NOT NULL,
    mood_change     integer NOT NULL,
    loyalty_change  integer NOT NULL,
    result          jsonb NOT NULL,
    CONSTRAINT participations_request_once PRIMARY KEY (telegram_id, request_key)
);
COMMENT ON TABLE game.participations IS 'Ledger of applied participations (changes as applied, after clamping).';
CREATE INDEX participations_cooldown_idx ON game.participations (waifu_id, event_code, participated_at DESC);

INSERT INTO game.participations (telegram_id, waifu_id, event_code, request_key, participated_at, energy_spent,
                                 xp_gained, mood_change, loyalty_change, result)
SELECT p.telegram_id, p.waifu_id, p.event_code, p.request_key, p.participated_at, p.energy_spent, p.xp_gained,
       p.mood_change, p.loyalty_change,
       jsonb_build_object('waifu_id', p.waifu_id, 'event_code', p.event_code, 'request_key', p.request_key,
                          'participated_at', p.participated_at,
                          'changes', jsonb_build_object('energy', -p.energy_spent, 'xp', p.xp_gained,
                                                        'mood', p.mood_change, 'loyalty', p.loyalty_change,
                                                        'level_before', p.level_before, 'level_after', p.level_after,
                                                        'leveled_up', p.level_after > p.level_before),
                          'replayed', false)
FROM game.participations_v2 AS p
WHERE EXISTS (SELECT 1 FROM game.waifus AS w WHERE w.id = p.waifu_id)
ON CONFLICT DO NOTHING;
DROP FUNCTION game.participation_json(game.waifus, jsonb, timestamptz, game.participations_v2, text, boolean);
DROP TABLE game.participations_v2;

-- Waifus, players, outbox, settings ------------------------------------------------------
ALTER TABLE game.waifus DROP CONSTRAINT waifus_one_per_template;
DROP INDEX game.waifus_regenerating_idx;
ALTER TABLE game.waifus DROP COLUMN regenerating, DROP COLUMN last_played;
ALTER TABLE game.waifus RESET (fillfactor);
CREATE INDEX waifus_energy_due_idx ON game.waifus (((dynamic ->> 'last_restore')::numeric))
    WHERE (dynamic ->> 'energy')::integer < game.max_energy();
ALTER TABLE game.players
    DROP COLUMN notifications, DROP COLUMN language, DROP COLUMN timezone,
    DROP COLUMN daily_streak, DROP COLUMN daily_last;
DROP TABLE game.notifications;
DROP TABLE game.config;

-- Functions as 0002-0004 declared them ----------------------------------------------------
CREATE OR REPLACE FUNCTION game.new_dynamic(at timestamptz) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object('xp', 0, 'energy', game.max_energy(), 'mood', 50, 'loyalty', 50,
                          'last_restore', extract(epoch FROM at));

CREATE OR REPLACE FUNCTION game.check_text(name text, value text, max_length integer, required boolean)
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

CREATE OR REPLACE FUNCTION game.require_player(telegram_id bigint) RETURNS game.players
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

CREATE OR REPLACE FUNCTION game.waifu_not_found(waifu_id bigint) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'waifu % not found', waifu_not_found.waifu_id
        USING ERRCODE = 'WF004', DETAIL = jsonb_build_object('waifu_id', waifu_not_found.waifu_id)::text;
END
$$;
COMMENT ON FUNCTION game.waifu_not_found(bigint) IS 'Raises WF004 (also for another player''s waifu: no leak).';

CREATE OR REPLACE FUNCTION game.require_waifu(waifu_id bigint, owner_id bigint DEFAULT NULL) RETURNS game.waifus
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
CREATE OR REPLACE FUNCTION api.player_profile(telegram_id bigint, now timestamptz DEFAULT now())
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
CREATE OR REPLACE FUNCTION api.register_player(telegram_id bigint, username text, first_name text, language_code text)
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
CREATE OR REPLACE FUNCTION api.waifu_templates() RETURNS jsonb
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
CREATE OR REPLACE FUNCTION api.adopt_waifu(telegram_id bigint, template_code text, request_key text DEFAULT NULL)
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
CREATE OR REPLACE FUNCTION api.waifu_stats(waifu_id bigint, now timestamptz DEFAULT now()) RETURNS jsonb
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
CREATE OR REPLACE FUNCTION api.player_waifu_stats(telegram_id bigint, waifu_id bigint, now timestamptz DEFAULT now())
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
CREATE OR REPLACE FUNCTION game.events_for(w game.waifus, at timestamptz) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION api.available_events(waifu_id bigint, now timestamptz DEFAULT now()) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION api.player_available_events(telegram_id bigint, waifu_id bigint, now timestamptz DEFAULT now())
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
CREATE OR REPLACE FUNCTION api.participate_in_event(telegram_id bigint, waifu_id bigint, event_code text,
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
CREATE OR REPLACE FUNCTION api.restore_energy(now timestamptz DEFAULT now()) RETURNS integer
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

CREATE OR REPLACE FUNCTION game.invalid_argument(argument text, value text, message text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION '%', invalid_argument.message
        USING ERRCODE = 'WF006',
              DETAIL = jsonb_build_object('argument', invalid_argument.argument, 'value', invalid_argument.value)::text;
END
$$;
COMMENT ON FUNCTION game.invalid_argument(text, text, text) IS 'Raises WF006 naming the argument.';

-- ops.create_event ---------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ops.create_event(code text, title text, energy_cost integer, xp_reward integer,
                                 mood_delta integer, loyalty_delta integer, cooldown interval,
                                 starts_at timestamptz DEFAULT NULL, ends_at timestamptz DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    e game.events;
BEGIN
    IF create_event.code IS NULL OR create_event.code !~ '^[a-z0-9_]{1,32}$' THEN
        PERFORM game.invalid_argument('code', create_event.code,
            'event code must be 1-32 characters of a-z, 0-9 and _');
    END IF;
    PERFORM game.check_text('title', create_event.title, 200, true);
    IF create_event.energy_cost IS NULL OR create_event.energy_cost NOT BETWEEN 0 AND game.max_energy() THEN
        PERFORM game.invalid_argument('energy_cost', create_event.energy_cost::text,
            format('energy_cost must be between 0 and %s', game.max_energy()));
    END IF;
    IF create_event.xp_reward IS NULL OR create_event.xp_reward < 0 THEN
        PERFORM game.invalid_argument('xp_reward', create_event.xp_reward::text, 'xp_reward must be 0 or more');
    END IF;
    IF create_event.mood_delta IS NULL OR abs(create_event.mood_delta) > game.max_stat() THEN
        PERFORM game.invalid_argument('mood_delta', create_event.mood_delta::text,
            format('mood_delta must be between -%1$s and %1$s', game.max_stat()));
    END IF;
    IF create_event.loyalty_delta IS NULL OR abs(create_event.loyalty_delta) > game.max_stat() THEN
        PERFORM game.invalid_argument('loyalty_delta', create_event.loyalty_delta::text,
            format('loyalty_delta must be between -%1$s and %1$s', game.max_stat()));
    END IF;
    IF create_event.cooldown IS NULL OR create_event.cooldown < interval '0' THEN
        PERFORM game.invalid_argument('cooldown', create_event.cooldown::text, 'cooldown must be 0 or more');
    END IF;
    IF create_event.ends_at <= create_event.starts_at THEN
        PERFORM game.invalid_argument('ends_at', create_event.ends_at::text, 'ends_at must be after starts_at');
    END IF;

    INSERT INTO game.events AS ev (code, title, energy_cost, xp_reward, mood_delta, loyalty_delta,
                                   cooldown, starts_at, ends_at)
    VALUES (create_event.code, create_event.title, create_event.energy_cost, create_event.xp_reward,
            create_event.mood_delta, create_event.loyalty_delta, create_event.cooldown,
            create_event.starts_at, create_event.ends_at)
    ON CONFLICT ON CONSTRAINT events_pkey DO UPDATE
        SET title = excluded.title, energy_cost = excluded.energy_cost, xp_reward = excluded.xp_reward,
            mood_delta = excluded.mood_delta, loyalty_delta = excluded.loyalty_delta,
            cooldown = excluded.cooldown, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
            updated_at = pg_catalog.now()
    RETURNING ev.* INTO e;
    RETURN to_jsonb(e);
END
$$;
REVOKE ALL ON FUNCTION ops.create_event(text, text, integer, integer, integer, integer, interval, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.create_event(text, text, integer, integer, integer, integer, interval, timestamptz, timestamptz) TO waifu_ops;
COMMENT ON FUNCTION ops.create_event(text, text, integer, integer, integer, integer, interval, timestamptz, timestamptz) IS
$$Create an event, or replace every field of an existing one with that code (upsert).
code: a-z, 0-9, _ (1-32); energy_cost 0..100; xp_reward >= 0; mood_delta/loyalty_delta -100..100;
cooldown per waifu ('0' for none); optional window starts_at .. ends_at (null = open-ended).
Example: SELECT ops.create_event('picnic', 'Picnic', 15, 25, 5, 2, '1 hour');
Returns the event row as JSON. Errors: WF006 invalid argument (DETAIL names it).$$;

-- ops.close_event ----------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ops.close_event(code text, at timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    e game.events;
BEGIN
    UPDATE game.events AS ev
    SET ends_at = close_event.at,
        starts_at = CASE WHEN ev.starts_at >= close_event.at THEN NULL ELSE ev.starts_at END,
        updated_at = pg_catalog.now()
    WHERE ev.code = close_event.code
    RETURNING ev.* INTO e;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event "%" does not exist', close_event.code
            USING ERRCODE = 'WF002', DETAIL = jsonb_build_object('event_code', close_event.code)::text;
    END IF;
    RETURN to_jsonb(e);
END
$$;
REVOKE ALL ON FUNCTION ops.close_event(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.close_event(text, timestamptz) TO waifu_ops;
COMMENT ON FUNCTION ops.close_event(text, timestamptz) IS
$$Close an event from `at` on (default now): players no longer see it. The ledger keeps its history.
Reopen with ops.create_event. Errors: WF002 no such event.$$;

-- ops.set_stat -------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ops.set_stat(waifu_id bigint, stat text, value integer, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    w game.waifus;
    current_stats jsonb;
    old_value bigint;
    high integer;
    at timestamptz := pg_catalog.now();
BEGIN
    high := CASE set_stat.stat
        WHEN 'xp' THEN 2147483647
        WHEN 'energy' THEN game.max_energy()
        WHEN 'mood' THEN game.max_stat()
        WHEN 'loyalty' THEN game.max_stat()
    END;
    IF high IS NULL THEN
        PERFORM game.invalid_argument('stat', set_stat.stat, 'stat must be one of xp, energy, mood, loyalty');
    END IF;
    IF set_stat.value IS NULL OR set_stat.value NOT BETWEEN 0 AND high THEN
        PERFORM game.invalid_argument('value', set_stat.value::text,
            format('%s must be between 0 and %s', set_stat.stat, high));
    END IF;
    PERFORM game.check_text('reason', set_stat.reason, 500, false);

    SELECT * INTO w FROM game.waifus AS x WHERE x.id = set_stat.waifu_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM game.waifu_not_found(set_stat.waifu_id);
    END IF;
    current_stats := game.regen(w.dynamic, at);
    old_value := (current_stats ->> set_stat.stat)::bigint;

    -- Setting energy follows the spending rule: a waifu that was full starts its clock now.
    UPDATE game.waifus AS x
    SET dynamic = jsonb_set(jsonb_set(game.regen(x.dynamic, at), ARRAY[set_stat.stat], to_jsonb(set_stat.value)),
                            '{last_restore}',
                            CASE WHEN set_stat.stat = 'energy' AND old_value >= game.max_energy()
                                 THEN to_jsonb(extract(epoch FROM at))
                                 ELSE current_stats -> 'last_restore' END)
    WHERE x.id = w.id
    RETURNING x.* INTO w;

    INSERT INTO game.stat_corrections (waifu_id, stat, old_value, new_value, reason)
    VALUES (w.id, set_stat.stat, old_value, set_stat.value, set_stat.reason);
    RETURN game.stats_json(w, w.dynamic, at);
END
$$;
REVOKE ALL ON FUNCTION ops.set_stat(bigint, text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_stat(bigint, text, integer, text) TO waifu_ops;
COMMENT ON FUNCTION ops.set_stat(bigint, text, integer, text) IS
$$Correct one stat of a waifu by hand; recorded in game.stat_corrections (see ops.stat_corrections).
stat: xp | energy | mood | loyalty; value: 0..100 (energy, mood, loyalty) or >= 0 (xp).
Example: SELECT ops.set_stat(42, 'energy', 100, 'refund for outage #12');
Returns the stats (api.waifu_stats shape). Errors: WF006 bad stat or value; WF004 waifu not found.$$;


DROP FUNCTION ops.set_config(interval, interval);
DROP FUNCTION game.purge_cron_history(interval);
DROP FUNCTION game.maintain_ledger(timestamptz, integer);
DROP FUNCTION game.ledger_week(timestamptz);
DROP FUNCTION game.cooldown_ends_at(jsonb, game.events);
DROP FUNCTION game.event_is_open(game.events, timestamptz);
DROP FUNCTION game.checked_now(timestamptz);
DROP FUNCTION game.may_set_clock();
DROP FUNCTION game.check_id(text, bigint);
DROP FUNCTION game.check_request_key(text, boolean);
DROP FUNCTION game.invalid_argument(text, text, jsonb);
DROP FUNCTION game.templates_per_player();
DROP FUNCTION game.start_mood();
DROP FUNCTION game.start_loyalty();

-- Views as 0004 declared them ------------------------------------------------------------
CREATE VIEW ops.overview AS
SELECT (SELECT count(*) FROM game.players) AS players,
       (SELECT count(*) FROM game.waifus) AS waifus,
       (SELECT count(*) FROM game.waifus AS w
        WHERE (w.dynamic ->> 'energy')::integer < game.max_energy()) AS waifus_below_max_energy,
       (SELECT count(*) FROM game.participations AS p
        WHERE p.participated_at > now() - interval '24 hours') AS participations_24h,
       (SELECT count(*) FROM game.events AS e
        WHERE (e.starts_at IS NULL OR e.starts_at <= now()) AND (e.ends_at IS NULL OR now() < e.ends_at))
           AS open_events;
COMMENT ON VIEW ops.overview IS 'One-row summary: players, waifus, how many regenerate, activity in 24 h.';

CREATE VIEW ops.events AS
SELECT e.code, e.title, e.energy_cost, e.xp_reward, e.mood_delta, e.loyalty_delta, e.cooldown,
       e.starts_at, e.ends_at,
       (e.starts_at IS NULL OR e.starts_at <= now()) AND (e.ends_at IS NULL OR now() < e.ends_at) AS open_now,
       (SELECT count(*) FROM game.participations AS p WHERE p.event_code = e.code) AS participations
FROM game.events AS e;
COMMENT ON VIEW ops.events IS 'Events, whether each is open now, and how often it was played.';

CREATE VIEW ops.recent_participations AS
SELECT p.participated_at, p.telegram_id, p.waifu_id, p.event_code, p.energy_spent, p.xp_gained,
       p.mood_change, p.loyalty_change, p.request_key
FROM game.participations AS p
ORDER BY p.participated_at DESC
LIMIT 100;
COMMENT ON VIEW ops.recent_participations IS 'The last 100 participations, newest first.';

-- pg_cron health: views are owned by the migration role, so waifu_ops can read them
-- without privileges on the cron schema.
CREATE VIEW ops.cron_jobs AS
SELECT j.jobid, j.jobname, j.schedule, j.command, j.active, j.username,
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
    'pg_cron jobs with their last run and failure counts; health: ok | failing | stalled | never ran | inactive.';

CREATE VIEW ops.cron_failures AS
SELECT j.jobname, d.start_time, d.end_time, d.return_message, d.command
FROM cron.job_run_details AS d
LEFT JOIN cron.job AS j ON j.jobid = d.jobid
WHERE d.status = 'failed'
ORDER BY d.start_time DESC
LIMIT 50;
COMMENT ON VIEW ops.cron_failures IS 'The last 50 failed pg_cron runs with their error.';

GRANT SELECT ON ALL TABLES IN SCHEMA ops TO waifu_ops;
GRANT SELECT ON game.stat_corrections TO waifu_ops;
-- A view checks EXECUTE on the functions it calls against its reader, not its owner:
-- operators need the pure rule functions that ops.waifus and ops.overview call.
GRANT EXECUTE ON FUNCTION game.max_energy(), game.max_stat(), game.energy_regen_seconds(),
    game.level_for_xp(bigint), game.level_start_xp(integer), game.regen(jsonb, timestamptz),
    game.stats_json(game.waifus, jsonb, timestamptz) TO waifu_ops;

-- pg_cron jobs as 0005 scheduled them -----------------------------------------------------
DO $$
BEGIN
    PERFORM cron.schedule('restore-energy', '* * * * *', 'SELECT api.restore_energy()');
    -- pg_cron never cleans its run log; a per-minute job adds 1,440 rows a day.
    PERFORM cron.schedule('purge-cron-history', '17 3 * * *',
        $cmd$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '14 days'$cmd$);
END
$$;

-- Privileges -------------------------------------------------------------------------------
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
END
$$;
GRANT CREATE ON SCHEMA public TO PUBLIC;
COMMENT ON ROLE waifu_bot IS 'The Telegram bot: EXECUTE on schema api only, no table privileges.';
REVOKE USAGE ON SCHEMA api, game FROM waifu_cron;
REVOKE EXECUTE ON FUNCTION api.restore_energy(timestamptz) FROM waifu_cron;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['waifu_cron', 'waifu_clock'] LOOP
        BEGIN
            EXECUTE format('DROP ROLE %I', r);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role % is still used by another database; kept', r;
        END;
    END LOOP;
END
$$;
