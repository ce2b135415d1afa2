-- The core's cost, second round (issue 8): less work per participation and per tick, and a
-- tick that skips the waifus it already knows are not due.
--
-- * The rules' constants (game.max_energy, max_stat, energy_regen_seconds) become
--   PL/pgSQL. Every single-row write re-plans the generated column `regenerating`, and
--   the planner folds an IMMUTABLE SQL function there by running the whole SQL-function
--   machinery (parse, plan, execute "SELECT 100"): 4% of a participation's CPU (perf).
--   A PL/pgSQL function is folded by one call of its cached code. They stay IMMUTABLE:
--   plans, the partial index and the generated columns still hold the constants.
-- * The tick remembers when it last ran (game.restore_state) and every waifu keeps the
--   phase of her energy clock within the regeneration interval (stored generated column
--   clock_phase = last_restore mod 60, which no restore changes: the clock only ever
--   moves by whole intervals). A tick less than one interval after the last full one
--   only looks at the waifus whose phase came round since the last tick; every other
--   regenerating waifu was not due then and is not due now. So a second tick right after
--   a tick reads nothing (it read 50,000 freshly written rows, 226 ms at 1M waifus),
--   and pg_cron's tick still looks at everybody at least every other minute (a full
--   pass whenever the last full one is an interval old), which catches any waifu a
--   writer left behind (a transaction over a minute old, or a direct UPDATE).
--   A partial index (clock_phase) WHERE regenerating finds a window's waifus: a tick
--   changes neither, so its updates stay heap-only.
-- * A participation checks its arguments with plain expressions and calls the checking
--   functions only for a bad argument (each PERFORM is a whole query), and its request-key
--   look-up skips the ledger partitions made ahead for the coming weeks (they cannot hold
--   a key used before now): 4 fewer index scans to start.
--
-- Adding the stored column rewrites game.waifus under an ACCESS EXCLUSIVE lock: at 1M waifus
-- the whole migration took about 6 s here; plan a maintenance window for a large table.
-- depends: 0008.i18n

-- Constants ---------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION game.max_energy() RETURNS integer
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$BEGIN RETURN 100; END$$;

CREATE OR REPLACE FUNCTION game.energy_regen_seconds() RETURNS integer
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$BEGIN RETURN 60; END$$;

CREATE OR REPLACE FUNCTION game.max_stat() RETURNS integer
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$BEGIN RETURN 100; END$$;

-- The tick's work list ------------------------------------------------------------------------
ALTER TABLE game.waifus
    ADD COLUMN clock_phase numeric
        GENERATED ALWAYS AS (mod((dynamic -> 'last_restore')::numeric, game.energy_regen_seconds())) STORED;
COMMENT ON COLUMN game.waifus.clock_phase IS
'Where her energy clock stands within the regeneration interval (last_restore mod 60 s). Restoring moves the
clock by whole intervals, so only a participation of a full waifu changes it: the tick''s index key.';
-- A second partial index beside waifus_regenerating_idx (id): a full pass still reads the
-- regenerating waifus in id order, which is the table's order (with this one as its only
-- index it was a bitmap scan, 7% more CPU); a window reads a range of this one.
CREATE INDEX waifus_clock_phase_idx ON game.waifus (clock_phase) WHERE regenerating;

CREATE TABLE game.restore_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_at   timestamptz NOT NULL,
    full_at   timestamptz NOT NULL
);
COMMENT ON TABLE game.restore_state IS
'The restore tick''s memory (one row, written by api.restore_energy): last_at, the clock of the last tick;
full_at, the clock of the last tick that looked at every regenerating waifu. Deleting the row makes the
next tick a full one.';

CREATE OR REPLACE FUNCTION api.restore_energy(now timestamptz DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(restore_energy.now);
    period integer := game.energy_regen_seconds();
    state game.restore_state;
    full_pass boolean;
    -- A window's clock phases, as ranges (lo[i], hi[i]]: two when it wraps round the
    -- interval's end. One range per statement: a plain range on the index key is always
    -- an index condition, whatever the statistics say (an OR of two ranges was planned as
    -- a scan of the whole index when they said few were regenerating).
    lo numeric[];
    hi numeric[];
    restored bigint;
    filled bigint[];
    updated bigint := 0::bigint;
    rested bigint[] := '{}'::bigint[];
    queued bigint;
BEGIN
    -- One tick at a time: two overlapping ticks (pg_cron's and an operator's manual
    -- one) would lock the due rows in different orders and could deadlock. A second
    -- tick waits here, then finds only what is still due.
    PERFORM pg_advisory_xact_lock(hashtextextended('waifu:api.restore_energy', 0));
    SELECT * INTO state FROM game.restore_state;
    -- After a tick at last_at no waifu is due before her clock's phase comes round
    -- again. Less than an interval after the last full pass (and not back in time),
    -- only the phases between the two ticks can be due.
    full_pass := state.full_at IS NULL OR at < state.last_at
                 OR at >= state.full_at + make_interval(secs => period);
    IF NOT full_pass THEN
        lo := ARRAY[mod(extract(epoch FROM state.last_at), period)];
        hi := ARRAY[mod(extract(epoch FROM at), period)];
        IF hi[1] < lo[1] THEN  -- it wraps: (lo, period) and [0, hi]
            lo := ARRAY[lo[1], -1];
            hi := ARRAY[period, hi[1]];
        END IF;
    END IF;
    -- Due: regenerating, with at least one whole interval since her clock. The two
    -- statements differ only in the phase range.
    IF full_pass THEN
        WITH r AS (
            UPDATE game.waifus AS w
            SET dynamic = game.regen(w.dynamic, at)
            WHERE w.regenerating
              AND (w.dynamic ->> 'last_restore')::numeric <= extract(epoch FROM at) - period
            RETURNING w.id, w.regenerating
        )
        SELECT count(*), array_agg(r.id) FILTER (WHERE NOT r.regenerating) INTO updated, rested FROM r;
    ELSE
        FOR i IN 1 .. cardinality(lo) LOOP
            WITH r AS (
                UPDATE game.waifus AS w
                SET dynamic = game.regen(w.dynamic, at)
                WHERE w.regenerating AND w.clock_phase > lo[i] AND w.clock_phase <= hi[i]
                  AND (w.dynamic ->> 'last_restore')::numeric <= extract(epoch FROM at) - period
                RETURNING w.id, w.regenerating
            )
            SELECT count(*), array_agg(r.id) FILTER (WHERE NOT r.regenerating) INTO restored, filled FROM r;
            updated := updated + restored;
            rested := rested || filled;
        END LOOP;
    END IF;
    rested := coalesce(rested, '{}'::bigint[]);
    -- The waifus this tick filled: one "she is rested" notification per player, in the
    -- same transaction.
    IF cardinality(rested) > 0 THEN
        WITH n AS (
            INSERT INTO game.notifications (telegram_id, kind, payload, created_at, available_at)
            SELECT w.owner_id, 'rested',
                   jsonb_build_object('waifus', jsonb_agg(jsonb_build_object(
                       'waifu_id', w.id, 'name', w.name, 'energy', game.max_energy()) ORDER BY w.id)),
                   at, at
            FROM game.waifus AS w
            JOIN game.players AS p ON p.telegram_id = w.owner_id AND p.notifications
            WHERE w.id = ANY (rested)
            GROUP BY w.owner_id
            RETURNING 1
        )
        SELECT count(*) INTO queued FROM n;
        IF queued > 0 THEN
            PERFORM pg_notify('waifu_notifications', queued::text);
        END IF;
    END IF;
    INSERT INTO game.restore_state AS s (last_at, full_at) VALUES (at, at)
    ON CONFLICT (singleton) DO UPDATE
        SET last_at = excluded.last_at, full_at = CASE WHEN full_pass THEN excluded.full_at ELSE s.full_at END;
    RETURN updated::integer;
END
$$;
COMMENT ON FUNCTION api.restore_energy(timestamptz) IS
$$Store the energy restored up to now for every due waifu; returns how many were updated.
Waifus it fills get one "she is rested" notification per player (game.notifications, if the player
has them on), then NOTIFY waifu_notifications. pg_cron runs it every minute (job restore-energy).
A tick within a minute of the last full one looks only at the waifus whose clock came round since the
last tick (game.restore_state); otherwise at every regenerating waifu.
Idempotent for the same now; catches up exactly after an outage. Reads never depend on it.$$;

-- Participation: the request-key look-up skips the partitions made ahead ------------------
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
    -- One request key of a player at a time, whichever waifu it names: the per-partition
    -- unique index cannot see a twin in another week's partition.
    PERFORM pg_advisory_xact_lock(hashtextextended(participate_in_event.request_key, participate_in_event.telegram_id));

    -- The upper bound prunes the partitions made ahead for the coming weeks before they
    -- are opened (a day of slack for a clock moved back by a test or an operator).
    SELECT * INTO prior FROM game.participations AS p
    WHERE p.telegram_id = participate_in_event.telegram_id AND p.request_key = participate_in_event.request_key
      AND p.participated_at < at + interval '1 day';
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
