-- Back to 0015: the answer reads the wallet again.

DROP FUNCTION game.participation_json(game.waifus, jsonb, timestamptz, game.participations, text, boolean, bigint);
CREATE FUNCTION game.participation_json(w game.waifus, dynamic jsonb, at timestamptz,
                                                   p game.participations, event_title text, replayed boolean)
    RETURNS jsonb
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
                'coins', participation_json.p.coins_gained,  -- 0013 (added)
                'level_before', participation_json.p.level_before,
                'level_after', participation_json.p.level_after,
                'leveled_up', participation_json.p.level_after > participation_json.p.level_before),
            -- 0013 (added): the wallet after it
            'coins', (SELECT x.coins FROM game.wallets AS x WHERE x.telegram_id = participation_json.p.telegram_id),
            'replayed', participation_json.replayed);
END
$$;
COMMENT ON FUNCTION game.participation_json(game.waifus, jsonb, timestamptz, game.participations, text, boolean) IS
    'Answer of api.participate_in_event: stats card + {event_code, event_title (player''s language), request_key, participated_at, changes, coins, replayed}.';

REVOKE ALL ON FUNCTION game.participation_json(game.waifus, jsonb, timestamptz, game.participations, text, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION api.participate_in_event(telegram_id bigint, waifu_id bigint, event_code text,
                                                    request_key text, now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
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

    -- 0013 (added): the player's wallet (after the waifu: the lock order of every
    -- function): coins with their ledger row, and the leaderboards' XP.
    PERFORM game.earn(participate_in_event.telegram_id, e.coin_reward,
                      (after ->> 'xp')::bigint - (before ->> 'xp')::bigint, 'event', participate_in_event.request_key,
                      at);

    INSERT INTO game.participations AS p (participated_at, telegram_id, waifu_id, xp_gained, level_before,
                                          level_after, energy_spent, mood_change, loyalty_change, event_code,
                                          request_key, coins_gained)  -- 0013: coins_gained
    VALUES (at, participate_in_event.telegram_id, w.id,
            (after ->> 'xp')::bigint - (before ->> 'xp')::bigint,
            game.level_for_xp((before ->> 'xp')::bigint), game.level_for_xp((after ->> 'xp')::bigint),
            e.energy_cost,
            (after ->> 'mood')::integer - (before ->> 'mood')::integer,
            (after ->> 'loyalty')::integer - (before ->> 'loyalty')::integer,
            e.code, participate_in_event.request_key, e.coin_reward)  -- 0013: e.coin_reward
    RETURNING p.* INTO rec;
    RETURN game.participation_json(w, after, at, rec, e.title, false);
END
$$;
COMMENT ON FUNCTION api.participate_in_event(bigint, bigint, text, text, timestamptz) IS
$$Take part in an event: restore pending energy, pay the cost, add XP, move mood and loyalty
(clamped to 0..game.max_stat()), pay the event's coins into the wallet, record it in the ledgers
(game.participations, game.coin_ledger) - one transaction, waifu row locked.
request_key: the same key again (within the ledger's retention) returns the recorded changes with the
waifu's current stats ("replayed": true) and changes nothing.
Returns the api.waifu_stats shape plus {event_code, event_title, request_key, participated_at,
changes: {energy, xp, mood, loyalty, coins, level_before, level_after, leveled_up}, coins, replayed}.
Errors (DETAIL is JSON): WF001 not enough energy {energy_needed, energy, enough_at};
WF002 event unknown or not open; WF003 cooldown {available_at, remaining_seconds};
WF004 waifu not found or another player's; WF005 not registered; WF006 bad argument or a `now`
the caller may not choose; WF007 request key already used for a different action.$$;
