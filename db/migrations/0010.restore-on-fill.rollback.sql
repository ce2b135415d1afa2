-- Back to 0009: the tick with its memory (game.restore_state) and the clock phase, the
-- (id) index of the regenerating waifus, no full_at. Adding clock_phase back rewrites
-- game.waifus, as 0009 did.
DROP INDEX game.waifus_full_at_idx;
ALTER TABLE game.waifus DROP COLUMN full_at;
CREATE INDEX waifus_regenerating_idx ON game.waifus (id) WHERE regenerating;
COMMENT ON COLUMN game.waifus.dynamic IS
    '{xp, energy, mood, loyalty: int; last_restore: epoch seconds of the energy clock}. '
    'Stored energy may lag; read it through game.regen() or the api functions.';
COMMENT ON COLUMN game.waifus.regenerating IS 'Energy below the cap (derived from dynamic): the tick''s work list.';

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

