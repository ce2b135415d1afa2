-- The restore tick writes only the waifus it fills (issue 8, third round).
--
-- A waifu's stats are (energy, clock): every read already computes her energy now with
-- game.regen(), so the +1 a tick stored for a waifu still below the cap changed nothing
-- anybody sees. It was nearly all of the tick's cost: at 1M waifus with 50,000
-- regenerating, 50,000 row writes a minute (1.0-1.5 s here), at 10M 500,000 (15.5 s).
-- Now the tick stores a waifu's restored energy when it reaches the cap: that is when
-- something changes for the game (she leaves the regenerating set, her player gets
-- "she is rested"). pg_cron still runs api.restore_energy every minute, and it still
-- restores with game.regen in one UPDATE ... RETURNING.
--
-- * full_at: a stored generated column, the epoch second at which her stored energy
--   reaches the cap (NULL when it has). A partial index on it where regenerating is the
--   tick's work list: `full_at <= now` is exactly the waifus to fill, so a tick reads
--   only them, and it needs no memory of its last run: a writer that moved a clock into
--   the past is caught by the next tick. game.restore_state and clock_phase go.
-- * The cost moves to participation: spending changes full_at, so a participation of a
--   regenerating waifu is no longer heap-only (it writes 4 index entries, one fewer than
--   a non-heap-only update before this migration: the (id) and clock_phase indexes go).
--
-- Adding the stored column rewrites game.waifus under an ACCESS EXCLUSIVE lock (about 6 s
-- at 1M waifus for 0009's column); plan a maintenance window for a large table.
-- depends: 0009.core-cost

ALTER TABLE game.waifus
    ADD COLUMN full_at numeric
        GENERATED ALWAYS AS (
            CASE WHEN (dynamic ->> 'energy')::integer < game.max_energy()
                 THEN (dynamic ->> 'last_restore')::numeric
                      + game.energy_regen_seconds() * (game.max_energy() - (dynamic ->> 'energy')::integer)
            END) STORED;
COMMENT ON COLUMN game.waifus.full_at IS
'Epoch second at which her stored energy reaches the cap (NULL at the cap). Restoring does not move it; the
tick fills her once it has passed.';
CREATE INDEX waifus_full_at_idx ON game.waifus (full_at) WHERE regenerating;

DROP TABLE game.restore_state;
DROP INDEX game.waifus_clock_phase_idx;
DROP INDEX game.waifus_regenerating_idx;
-- Dropping a column rewrites nothing (the value stays in each row until it is next written).
ALTER TABLE game.waifus DROP COLUMN clock_phase;

COMMENT ON COLUMN game.waifus.dynamic IS
'{xp, energy, mood, loyalty: int; last_restore: epoch seconds of the energy clock}. Energy is stored as of
its clock: a waifu below the cap regains 1 per game.energy_regen_seconds() after it, and the tick stores that
only when she reaches the cap. Read it through game.regen() or the api and ops functions.';
COMMENT ON COLUMN game.waifus.regenerating IS
'Stored energy below the cap (derived from dynamic): true until the tick that fills her.';

CREATE OR REPLACE FUNCTION api.restore_energy(now timestamptz DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(restore_energy.now);
    filled bigint;
    queued bigint;
BEGIN
    -- One tick at a time: two overlapping ticks (pg_cron's and an operator's manual
    -- one) would lock the same rows in different orders and could deadlock. A second
    -- tick waits here, then finds only what is still to fill.
    PERFORM pg_advisory_xact_lock(hashtextextended('waifu:api.restore_energy', 0));
    -- The waifus whose energy has reached the cap by now (waifus_full_at_idx), filled
    -- with the one rule game.regen, and one "she is rested" notification per player in
    -- the same transaction.
    WITH restored AS (
        UPDATE game.waifus AS w
        SET dynamic = game.regen(w.dynamic, at)
        WHERE w.regenerating AND w.full_at <= extract(epoch FROM at)
        RETURNING w.id, w.owner_id, w.name
    ), rested AS (
        INSERT INTO game.notifications (telegram_id, kind, payload, created_at, available_at)
        SELECT r.owner_id, 'rested',
               jsonb_build_object('waifus', jsonb_agg(jsonb_build_object(
                   'waifu_id', r.id, 'name', r.name, 'energy', game.max_energy()) ORDER BY r.id)),
               at, at
        FROM restored AS r
        JOIN game.players AS p ON p.telegram_id = r.owner_id AND p.notifications
        GROUP BY r.owner_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM restored), (SELECT count(*) FROM rested) INTO filled, queued;
    IF queued > 0 THEN
        PERFORM pg_notify('waifu_notifications', queued::text);
    END IF;
    RETURN filled::integer;
END
$$;
COMMENT ON FUNCTION api.restore_energy(timestamptz) IS
$$Fill every waifu whose energy has reached the cap by now (stores her restored stats); returns how many.
A waifu still below the cap is not written: her energy is computed from her clock at every read.
The waifus it fills get one "she is rested" notification per player (game.notifications, if the
player has them on), then NOTIFY waifu_notifications. pg_cron runs it every minute (job restore-energy).
Idempotent for the same now; catches up exactly after an outage. Reads never depend on it.$$;
