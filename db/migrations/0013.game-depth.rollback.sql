-- Back to 0011: no collection limit, coins, shop, gifts, leaderboards or groups. The
-- functions 0013 redefined are restored as 0011 left them (from db/schema.sql before 0013).

DO $$
BEGIN
    PERFORM cron.unschedule(j.jobid) FROM cron.job AS j WHERE j.jobname IN ('group-events', 'leaderboard-steps');
END
$$;

DROP VIEW ops.groups;
DROP VIEW ops.coins;
DROP VIEW ops.items;
DROP FUNCTION api.leaderboard(bigint, text, bigint, timestamptz);
DROP FUNCTION game.global_rank(text, bigint, timestamptz);
DROP FUNCTION game.refresh_rank_steps();
DROP FUNCTION game.rank_step();
DROP FUNCTION game.rank_exact_limit();
DROP TABLE game.rank_steps;
DROP FUNCTION api.give_gift(bigint, bigint, text, text, bigint, timestamptz);
DROP FUNCTION api.finish_group_messages(text, bigint[], text, integer, timestamptz);
DROP FUNCTION api.claim_group_messages(text, integer, integer, timestamptz);
DROP FUNCTION game.group_events_job();
DROP FUNCTION game.group_events_step(timestamptz);
DROP FUNCTION api.join_group_event(bigint, bigint, bigint, timestamptz);
DROP TABLE game.group_messages;
DROP TABLE game.group_event_participants;
DROP TABLE game.group_events;
DROP FUNCTION api.set_group_events(bigint, bigint, boolean, boolean, timestamptz);
DROP FUNCTION api.register_group_member(bigint, bigint, text, timestamptz);
DROP FUNCTION game.require_member(bigint, bigint);
DROP FUNCTION game.check_chat_id(bigint);
DROP TABLE game.group_members;
DROP TABLE game.groups;
DROP FUNCTION game.apply_item(jsonb, game.items);
DROP FUNCTION api.buy_item(bigint, text, text, integer, timestamptz);
DROP FUNCTION api.inventory(bigint);
DROP FUNCTION api.shop(bigint);
DROP FUNCTION game.item_json(game.items, text);
DROP FUNCTION ops.set_item_translation(text, text, text, text);
DROP FUNCTION ops.stop_selling_item(text);
DROP FUNCTION game.item_not_found(text);
DROP FUNCTION ops.create_item(text, text, integer, integer, integer, integer, interval, text);
DROP TABLE game.gifts;
DROP TABLE game.purchases;
DROP TABLE game.inventory;
DROP TABLE game.item_translations;
DROP TABLE game.items;

CREATE OR REPLACE FUNCTION api.adopt_waifu(telegram_id bigint, template_code text, request_key text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
    VALUES (adopt_waifu.telegram_id, t.code,
            coalesce((SELECT tr.name FROM game.template_translations AS tr
                      WHERE tr.template_code = t.code
                        AND tr.language = game.player_language(adopt_waifu.telegram_id)), t.name),
            game.new_dynamic(now()), adopt_waifu.request_key)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;

COMMENT ON FUNCTION api.adopt_waifu(telegram_id bigint, template_code text, request_key text) IS 'Adopt a starter waifu (full energy, starting mood and loyalty, xp 0); returns the new waifu''s id.
She is named in the player''s language (the template''s translated name, else English).
A player adopts each template once (a collection).
request_key (optional): the same key again returns the same waifu instead of a second one.
Errors: WF005 not registered; WF006 bad argument or unknown template; WF007 key used for another
template; WF008 template already adopted {template_code, waifu_id, limit}.';

CREATE OR REPLACE FUNCTION api.waifu_templates(language text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    RETURN coalesce((
        SELECT jsonb_agg(jsonb_build_object('code', t.code, 'name', coalesce(tr.name, t.name),
                                            'description', coalesce(tr.description, t.description))
                         ORDER BY coalesce(tr.name, t.name), t.code)
        FROM game.waifu_templates AS t
        LEFT JOIN game.template_translations AS tr
            ON tr.template_code = t.code AND tr.language = waifu_templates.language), '[]'::jsonb);
END
$$;

COMMENT ON FUNCTION api.waifu_templates(language text) IS 'The starter waifus a player can adopt: [{code, name, description}], by name.
language (optional: en, ru): names and descriptions in it where translated, else English.';

CREATE OR REPLACE FUNCTION game.participation_json(w game.waifus, dynamic jsonb, at timestamp with time zone, p game.participations, event_title text, replayed boolean) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    reader_language text := game.player_language(participation_json.p.telegram_id);
    localized_title text := participation_json.event_title;
BEGIN
    IF reader_language <> 'en' THEN  -- English is the base text: no look-up
        localized_title := coalesce(
            (SELECT tr.title FROM game.event_translations AS tr
             WHERE tr.event_code = participation_json.p.event_code AND tr.language = reader_language),
            participation_json.event_title);
    END IF;
    RETURN game.stats_json(participation_json.w, participation_json.dynamic, participation_json.at)
        || jsonb_build_object(
            'event_code', participation_json.p.event_code,
            'event_title', localized_title,
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

COMMENT ON FUNCTION game.participation_json(w game.waifus, dynamic jsonb, at timestamp with time zone, p game.participations, event_title text, replayed boolean) IS 'Answer of api.participate_in_event: stats card + {event_code, event_title (player''s language), request_key, participated_at, changes, replayed}.';

CREATE OR REPLACE FUNCTION api.participate_in_event(telegram_id bigint, waifu_id bigint, event_code text, request_key text, now timestamp with time zone DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    at timestamptz := game.checked_now(participate_in_event.now);
    w game.waifus;
    e game.events;
    prior game.participations;
    key_row game.request_keys;
    rec game.participations;
    before jsonb;
    after jsonb;
    cooldown_end timestamptz;
    energy_now integer;
BEGIN
    -- The argument checks' own conditions, so that a valid call evaluates four plain
    -- expressions; the checks run (and raise their usual errors) only for a bad argument.
    -- A PERFORM is a whole query each (executor start, run and end).
    IF participate_in_event.telegram_id IS NULL OR participate_in_event.telegram_id <= 0
       OR participate_in_event.waifu_id IS NULL OR participate_in_event.waifu_id <= 0 THEN
        PERFORM game.check_id('telegram_id', participate_in_event.telegram_id);
        PERFORM game.check_id('waifu_id', participate_in_event.waifu_id);
    END IF;
    IF participate_in_event.request_key IS NULL OR btrim(participate_in_event.request_key) = ''
       OR length(participate_in_event.request_key) > 128 OR participate_in_event.request_key ~ '[[:cntrl:]]' THEN
        PERFORM game.check_request_key(participate_in_event.request_key, true);
    END IF;
    IF participate_in_event.event_code IS NULL OR btrim(participate_in_event.event_code) = ''
       OR length(participate_in_event.event_code) > 32 THEN
        PERFORM game.check_text('event_code', participate_in_event.event_code, 32, true);
    END IF;

    -- Lock the waifu first: everything below sees no concurrent change to her, and a
    -- concurrent retry with the same key waits here, then finds the ledger row.
    SELECT * INTO w FROM game.waifus AS x
    WHERE x.id = participate_in_event.waifu_id AND x.owner_id = participate_in_event.telegram_id
    FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM game.require_waifu(participate_in_event.waifu_id, participate_in_event.telegram_id);  -- raises
    END IF;
    -- The key first, in one statement: taken (by a call committed, or by one still running,
    -- which this waits for) means a retry. The primary key sees every key the ledger keeps,
    -- whatever week's partition holds its participation; a refusal below rolls the key back.
    INSERT INTO game.request_keys AS k (telegram_id, request_key, waifu_id, event_code, participated_at)
    VALUES (participate_in_event.telegram_id, participate_in_event.request_key, participate_in_event.waifu_id,
            participate_in_event.event_code, at)
    ON CONFLICT ON CONSTRAINT request_keys_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO key_row FROM game.request_keys AS k
        WHERE k.telegram_id = participate_in_event.telegram_id AND k.request_key = participate_in_event.request_key;
        IF key_row.waifu_id <> participate_in_event.waifu_id OR key_row.event_code <> participate_in_event.event_code THEN
            RAISE EXCEPTION 'request key "%" was already used for another action', participate_in_event.request_key
                USING ERRCODE = 'WF007',
                      DETAIL = jsonb_build_object('request_key', key_row.request_key, 'waifu_id', key_row.waifu_id,
                                                  'event_code', key_row.event_code)::text;
        END IF;
        -- The recorded changes, from the one week's partition that holds them (planned for
        -- this time: a cached plan would lock every partition of the ledger).
        EXECUTE 'SELECT * FROM game.participations AS p WHERE p.telegram_id = $1 AND p.request_key = $2 '
                'AND p.participated_at = $3'
            INTO prior USING key_row.telegram_id, key_row.request_key, key_row.participated_at;
        RETURN game.participation_json(w, game.regen(w.dynamic, at), at, prior,
            (SELECT ev.title FROM game.events AS ev WHERE ev.code = prior.event_code), true);
    END IF;

    SELECT * INTO e FROM game.events AS ev WHERE ev.code = participate_in_event.event_code;
    IF NOT FOUND OR NOT game.event_is_open(e, at) THEN
        RAISE EXCEPTION 'event "%" is not open', participate_in_event.event_code
            USING ERRCODE = 'WF002',
                  DETAIL = jsonb_build_object('event_code', participate_in_event.event_code,
                                              'starts_at', e.starts_at, 'ends_at', e.ends_at)::text;
    END IF;

    cooldown_end := game.cooldown_ends_at(w.last_played, e);
    IF cooldown_end > at THEN
        RAISE EXCEPTION 'event "%" is on cooldown for this waifu', e.code
            USING ERRCODE = 'WF003',
                  DETAIL = jsonb_build_object(
                      'event_code', e.code,
                      'available_at', cooldown_end,
                      'remaining_seconds', ceil(extract(epoch FROM (cooldown_end - at)))::integer)::text;
    END IF;

    before := game.regen(w.dynamic, at);
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

    -- The one write to the waifu: restore and spend in a single statement on the locked
    -- row (`before` is her stats restored to now; passing it, not the column, lets the
    -- planner inline game.apply_event), and her cooldown record.
    UPDATE game.waifus AS x
    SET dynamic = game.apply_event(before, e, at),
        last_played = x.last_played || jsonb_build_object(e.code, extract(epoch FROM at))
    WHERE x.id = w.id
    RETURNING x.* INTO w;
    after := w.dynamic;

    INSERT INTO game.participations AS p (participated_at, telegram_id, waifu_id, xp_gained, level_before,
                                          level_after, energy_spent, mood_change, loyalty_change, event_code,
                                          request_key)
    VALUES (at, participate_in_event.telegram_id, w.id,
            (after ->> 'xp')::bigint - (before ->> 'xp')::bigint,
            game.level_for_xp((before ->> 'xp')::bigint), game.level_for_xp((after ->> 'xp')::bigint),
            e.energy_cost,
            (after ->> 'mood')::integer - (before ->> 'mood')::integer,
            (after ->> 'loyalty')::integer - (before ->> 'loyalty')::integer,
            e.code, participate_in_event.request_key)
    RETURNING p.* INTO rec;
    RETURN game.participation_json(w, after, at, rec, e.title, false);
END
$_$;

COMMENT ON FUNCTION api.participate_in_event(telegram_id bigint, waifu_id bigint, event_code text, request_key text, now timestamp with time zone) IS 'Take part in an event: restore pending energy, pay the cost, add XP, move mood and loyalty
(clamped to 0..game.max_stat()), record it in the ledger - one transaction, waifu row locked.
request_key: the same key again (within the ledger''s retention) returns the recorded changes with the
waifu''s current stats ("replayed": true) and changes nothing.
Returns the api.waifu_stats shape plus {event_code, event_title, request_key, participated_at,
changes: {energy, xp, mood, loyalty, level_before, level_after, leveled_up}, replayed}.
Errors (DETAIL is JSON): WF001 not enough energy {energy_needed, energy, enough_at};
WF002 event unknown or not open; WF003 cooldown {available_at, remaining_seconds};
WF004 waifu not found or another player''s; WF005 not registered; WF006 bad argument or a `now`
the caller may not choose; WF007 request key already used for a different action.';

CREATE OR REPLACE FUNCTION game.daily_status(p game.players, at timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    today date := game.local_day(daily_status.p.timezone, daily_status.at);
    last date := daily_status.p.daily_last;
    ready_at timestamptz := game.daily_available_at(daily_status.p);
    available boolean := ready_at IS NULL OR daily_status.at >= ready_at;
    -- The streak the next claim makes: it goes on from a claim yesterday (or today, for
    -- tomorrow's claim) and starts again at 1 after a missed day.
    next_streak integer := CASE WHEN last >= today - 1 THEN daily_status.p.daily_streak + 1 ELSE 1 END;
    reward game.daily_rewards := game.daily_reward(next_streak);
BEGIN
    RETURN jsonb_build_object(
        'available', available,
        'available_at', CASE WHEN available THEN NULL ELSE ready_at END,
        'streak', CASE WHEN last >= today - 1 THEN daily_status.p.daily_streak ELSE 0 END,
        'last_day', last,
        'next_streak', next_streak,
        'next_reward', jsonb_build_object('energy', reward.energy, 'xp', reward.xp, 'mood', reward.mood,
                                          'loyalty', reward.loyalty));
END
$$;

COMMENT ON FUNCTION game.daily_status(p game.players, at timestamp with time zone) IS 'Daily reward state {available, available_at, streak, last_day, next_streak, next_reward}.';

CREATE OR REPLACE FUNCTION api.claim_daily(telegram_id bigint, request_key text, now timestamp with time zone DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    at timestamptz := game.checked_now(claim_daily.now);
    p game.players;
    prior game.daily_claims;
    today date;
    ready_at timestamptz;
    streak integer;
    reward game.daily_rewards;
    waifus jsonb;
    result jsonb;
BEGIN
    PERFORM game.check_id('telegram_id', claim_daily.telegram_id);
    PERFORM game.check_request_key(claim_daily.request_key, true);
    -- The player's row is the lock: two claims of one player run one after the other,
    -- and the second sees the first's day (or its request key). The restore tick never
    -- waits for a row (SKIP LOCKED), so locking several waifus cannot deadlock with it.
    SELECT * INTO p FROM game.players AS x WHERE x.telegram_id = claim_daily.telegram_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM game.require_player(claim_daily.telegram_id);  -- raises WF005
    END IF;

    SELECT * INTO prior FROM game.daily_claims AS c
    WHERE c.telegram_id = claim_daily.telegram_id AND c.request_key = claim_daily.request_key;
    IF FOUND THEN
        RETURN prior.result || jsonb_build_object('replayed', true);
    END IF;

    IF NOT EXISTS (SELECT FROM game.waifus AS w WHERE w.owner_id = p.telegram_id) THEN
        RAISE EXCEPTION 'player % has no waifu to reward', p.telegram_id
            USING ERRCODE = 'WF004', DETAIL = jsonb_build_object('telegram_id', p.telegram_id, 'waifus', 0)::text,
                  HINT = 'Adopt a waifu first (api.adopt_waifu).';
    END IF;

    today := game.local_day(p.timezone, at);
    ready_at := game.daily_available_at(p);
    IF at < ready_at THEN
        RAISE EXCEPTION 'the daily reward was already claimed on %', p.daily_last
            USING ERRCODE = 'WF008',
                  DETAIL = jsonb_build_object('limit', 'daily', 'available_at', ready_at,
                                              'day', p.daily_last, 'streak', p.daily_streak,
                                              'timezone', coalesce(p.timezone, 'UTC'))::text;
    END IF;

    streak := CASE WHEN p.daily_last = today - 1 THEN p.daily_streak + 1 ELSE 1 END;
    reward := game.daily_reward(streak);
    -- Every waifu of the player gets the reward: the streak is the player's, and a
    -- player who cares for several should not have to choose. Locked in id order.
    WITH before AS (
        SELECT w.id, game.regen(w.dynamic, at) AS dynamic
        FROM game.waifus AS w
        WHERE w.owner_id = p.telegram_id
        ORDER BY w.id
        FOR UPDATE
    ), changed AS (
        UPDATE game.waifus AS w
        SET dynamic = game.apply_daily(b.dynamic, reward)
        FROM before AS b
        WHERE w.id = b.id
        RETURNING w AS waifu, b.dynamic AS before
    )
    SELECT jsonb_agg(game.stats_json(c.waifu, (c.waifu).dynamic, at) || jsonb_build_object('gained', jsonb_build_object(
               'energy', ((c.waifu).dynamic ->> 'energy')::integer - (c.before ->> 'energy')::integer,
               'xp', ((c.waifu).dynamic ->> 'xp')::bigint - (c.before ->> 'xp')::bigint,
               'mood', ((c.waifu).dynamic ->> 'mood')::integer - (c.before ->> 'mood')::integer,
               'loyalty', ((c.waifu).dynamic ->> 'loyalty')::integer - (c.before ->> 'loyalty')::integer))
           ORDER BY (c.waifu).id)
    INTO waifus
    FROM changed AS c;

    UPDATE game.players AS x SET daily_streak = streak, daily_last = today, daily_last_at = at
    WHERE x.telegram_id = p.telegram_id
    RETURNING x.* INTO p;
    result := jsonb_build_object(
        'telegram_id', p.telegram_id,
        'day', today,
        'streak', streak,
        'reward', jsonb_build_object('energy', reward.energy, 'xp', reward.xp, 'mood', reward.mood,
                                     'loyalty', reward.loyalty),
        'waifus', waifus,
        'claimed_at', at,
        'next_at', game.daily_available_at(p),
        'request_key', claim_daily.request_key,
        'replayed', false);
    INSERT INTO game.daily_claims (telegram_id, day, request_key, claimed_at, streak, result)
    VALUES (p.telegram_id, today, claim_daily.request_key, at, streak, result);
    RETURN result;
END
$$;

COMMENT ON FUNCTION api.claim_daily(telegram_id bigint, request_key text, now timestamp with time zone) IS 'Claim today''s daily reward: every waifu of the player gets the reward of the streak''s day
(game.daily_rewards: energy up to the cap, XP, mood and loyalty up to the cap).
One claim per calendar day in the player''s timezone (UTC unless they set one), and at least 20 hours
(game.daily_hours()) after the previous claim whatever the timezone does. The streak goes on after a
claim the day before and starts again at 1 after a missed day.
request_key: the same key again returns the recorded result ("replayed": true), any day.
Returns {telegram_id, day, streak, reward: {energy, xp, mood, loyalty}, waifus: [api.waifu_stats
shape + gained: {energy, xp, mood, loyalty}], claimed_at, next_at, request_key, replayed}.
Errors: WF004 the player has no waifu; WF005 not registered; WF006 missing/too long request_key or
a `now` this caller may not choose; WF008 not yet {limit: "daily", available_at, day, streak, timezone}.';

CREATE OR REPLACE FUNCTION api.player_profile(telegram_id bigint, now timestamp with time zone DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
        'language', game.effective_language(p.language, p.language_code),
        'registered_at', p.registered_at,
        'waifus', coalesce((
            SELECT jsonb_agg(game.stats_json(w, game.regen(w.dynamic, at), at) ORDER BY w.id)
            FROM game.waifus AS w
            WHERE w.owner_id = p.telegram_id), '[]'::jsonb));
END
$$;

COMMENT ON FUNCTION api.player_profile(telegram_id bigint, now timestamp with time zone) IS 'The player and every waifu''s stats (effective as of now).
Returns {telegram_id, username, first_name, language_code, language, registered_at,
waifus: [api.waifu_stats shape]}; language: what the player reads (en, ru), from the
setting or else from language_code (game.effective_language).
Errors: WF005 not registered; WF006 a `now` the caller may not choose.';

DROP FUNCTION game.daily_coins(integer);
DROP FUNCTION ops.set_event_coins(text, integer);
ALTER TABLE game.participations DROP COLUMN coins_gained;
ALTER TABLE game.events DROP COLUMN coin_reward;
DROP FUNCTION ops.adjust_coins(bigint, integer, text);
DROP FUNCTION game.lock_wallet(bigint);
DROP FUNCTION game.earn(bigint, bigint, bigint, text, text, timestamptz);
DROP TABLE game.coin_ledger;
DROP TABLE game.wallets;
DROP FUNCTION api.set_active_waifu(bigint, bigint);
DROP FUNCTION api.player_waifus(bigint, timestamptz);
DROP FUNCTION game.active_waifu(bigint);
ALTER TABLE game.players DROP COLUMN active_waifu_id;
ALTER TABLE game.waifu_templates DROP COLUMN rarity;
DROP FUNCTION game.refuse(text, text, jsonb);
DROP VIEW ops.economy;
DROP FUNCTION ops.set_economy(integer, interval, interval, integer);
DROP TABLE game.economy;
