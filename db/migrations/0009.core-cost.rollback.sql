-- Back to 0008: the constants as SQL functions, no clock phase and no tick memory, the
-- participation's argument checks as PERFORMs and its ledger look-up over every partition.
-- Dropping clock_phase rewrites nothing (a dropped column stays in the rows until they change).
DROP TABLE game.restore_state;
DROP INDEX game.waifus_clock_phase_idx;
ALTER TABLE game.waifus DROP COLUMN clock_phase;

CREATE OR REPLACE FUNCTION game.max_energy() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 100;

CREATE OR REPLACE FUNCTION game.energy_regen_seconds() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 60;

CREATE OR REPLACE FUNCTION game.max_stat() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 100;

CREATE OR REPLACE FUNCTION api.restore_energy(now timestamptz DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(restore_energy.now);
    updated bigint;
    queued bigint;
BEGIN
    -- One tick at a time: two overlapping ticks (pg_cron's and an operator's manual
    -- one) would lock the due rows in different orders and could deadlock. A second
    -- tick waits here, then finds only what is still due.
    PERFORM pg_advisory_xact_lock(hashtextextended('waifu:api.restore_energy', 0));
    -- Only regenerating waifus with at least one whole interval since their clock; the
    -- partial index waifus_regenerating_idx lists them. The waifus this tick fills get a
    -- "she is rested" notification in the same transaction (one row per player).
    WITH restored AS (
        UPDATE game.waifus AS w
        SET dynamic = game.regen(w.dynamic, at)
        WHERE w.regenerating
          AND (w.dynamic ->> 'last_restore')::numeric <= extract(epoch FROM at) - game.energy_regen_seconds()
        RETURNING w.id, w.owner_id, w.name, w.regenerating
    ), rested AS (
        INSERT INTO game.notifications (telegram_id, kind, payload, created_at, available_at)
        SELECT r.owner_id, 'rested',
               jsonb_build_object('waifus', jsonb_agg(jsonb_build_object(
                   'waifu_id', r.id, 'name', r.name, 'energy', game.max_energy()) ORDER BY r.id)),
               at, at
        FROM restored AS r
        JOIN game.players AS p ON p.telegram_id = r.owner_id AND p.notifications
        WHERE NOT r.regenerating
        GROUP BY r.owner_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM restored), (SELECT count(*) FROM rested) INTO updated, queued;
    IF queued > 0 THEN
        PERFORM pg_notify('waifu_notifications', queued::text);
    END IF;
    RETURN updated::integer;
END
$$;

COMMENT ON FUNCTION api.restore_energy(timestamptz) IS
$$Store the energy restored up to now for every due waifu; returns how many were updated.
Waifus it fills get one "she is rested" notification per player (game.notifications, if the player
has them on), then NOTIFY waifu_notifications. pg_cron runs it every minute (job restore-energy).
Idempotent for the same now; catches up exactly after an outage. Reads never depend on it.$$;

CREATE OR REPLACE FUNCTION api.participate_in_event(telegram_id bigint, waifu_id bigint, event_code text,
                                                    request_key text, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(participate_in_event.now);
    w game.waifus;
    e game.events;
    prior game.participations;
    rec game.participations;
    before jsonb;
    after jsonb;
    cooldown_end timestamptz;
    energy_now integer;
BEGIN
    PERFORM game.check_id('telegram_id', participate_in_event.telegram_id);
    PERFORM game.check_id('waifu_id', participate_in_event.waifu_id);
    PERFORM game.check_request_key(participate_in_event.request_key, true);
    PERFORM game.check_text('event_code', participate_in_event.event_code, 32, true);

    -- Lock the waifu first: everything below sees no concurrent change to her, and a
    -- concurrent retry with the same key waits here, then finds the ledger row.
    SELECT * INTO w FROM game.waifus AS x
    WHERE x.id = participate_in_event.waifu_id AND x.owner_id = participate_in_event.telegram_id
    FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM game.require_waifu(participate_in_event.waifu_id, participate_in_event.telegram_id);  -- raises
    END IF;
    -- One request key of a player at a time, whichever waifu it names: the per-partition
    -- unique index cannot see a twin in another week's partition.
    PERFORM pg_advisory_xact_lock(hashtextextended(participate_in_event.request_key, participate_in_event.telegram_id));

    SELECT * INTO prior FROM game.participations AS p
    WHERE p.telegram_id = participate_in_event.telegram_id AND p.request_key = participate_in_event.request_key;
    IF FOUND THEN
        IF prior.waifu_id <> participate_in_event.waifu_id OR prior.event_code <> participate_in_event.event_code THEN
            RAISE EXCEPTION 'request key "%" was already used for another action', participate_in_event.request_key
                USING ERRCODE = 'WF007',
                      DETAIL = jsonb_build_object('request_key', prior.request_key, 'waifu_id', prior.waifu_id,
                                                  'event_code', prior.event_code)::text;
        END IF;
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
$$;
