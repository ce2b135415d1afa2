-- Nobody can stall the game (issue 18) and the tick stops rewriting index entries (issue 22).
--
-- * No lock a caller can hold stops anybody else. The advisory-lock functions lose
--   EXECUTE for PUBLIC in this database (the game's definer functions, owned by the
--   superuser, still use them; the tick and the daily claim use none). waifu_bot gets a
--   lock timeout, so a call that meets a row some hostile session of the same login
--   holds fails in a second (55P03) instead of holding a pool connection for good.
-- * The restore tick writes no waifu. Energy is computed at every read (0010), so the
--   only work left when a waifu reaches the cap is telling her player, and a message can
--   only go out at Telegram's pace (about 25 a second): the tick stages each batch of
--   waifus that reached the cap as one row of game.rested_ranges (a range of the (full_at,
--   id) index), and the sender's claim turns the oldest range into per-player messages
--   when the outbox runs short (game.expand_rested). pg_cron runs CALL
--   game.restore_energy_job(), a short transaction per batch; no batch takes a row lock
--   a player's call could meet.
-- * full_at is "the epoch second at which her stored energy reaches the cap" for every
--   waifu, full ones included (for them: when they last did). The tick walks the index
--   (full_at, id) from a cursor (game.tick_state) that only moves forward, so each waifu
--   that reaches the cap is staged once; spending moves her full_at, so a waifu who spent
--   before her range was expanded is not told.
-- * One rate limiter for every process, in UNLOGGED tables: api.rate_limit (GCRA, one
--   upsert a call) and api.admit_update (an update seen by two processes is handled once).
-- * The outbox: rows older than game.config.notification_max_age end as expired, a
--   "she is rested" whose waifus are no longer rested ends as stale, and a claim takes
--   whole players, so a player gets one message for all their waiting rows.
-- * No definer function takes a caller's clock for housekeeping (purge_player_history);
--   error texts and DETAILs are bounded; the daily reward waits at least 20 hours.
--
-- Replacing full_at rewrites game.waifus under an ACCESS EXCLUSIVE lock (about 6 s at 1M
-- waifus for 0010's column); plan a maintenance window for a large table.
-- depends: 0010.restore-on-fill

-- Locks a caller could hold ------------------------------------------------------------------

DO $$
DECLARE
    f regprocedure;
BEGIN
    -- Taking an advisory lock: refused to every role but superusers. Releasing one's own
    -- (pg_advisory_unlock*) stays open: it harms nobody, and asyncpg's pool reset calls it.
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace
          AND p.proname ~ '^pg_(try_)?advisory_(xact_)?lock(_shared)?$'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
    -- The bot's sessions: a row lock held elsewhere costs a call one second, not a pool
    -- connection until the statement timeout; a transaction left open is closed. Refusals
    -- (game errors) log one line, without statement, DETAIL or CONTEXT.
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I SET lock_timeout = %L', current_database(), '1s');
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I SET idle_in_transaction_session_timeout = %L',
                   current_database(), '10s');
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I SET statement_timeout = %L', current_database(), '15s');
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I SET log_error_verbosity = %L', current_database(), 'terse');
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I SET log_min_error_statement = %L', current_database(),
                   'panic');
    -- The jobs: a tick batch that meets a batch of a manual tick waits for it, at most 5 s.
    EXECUTE format('ALTER ROLE waifu_cron IN DATABASE %I SET lock_timeout = %L', current_database(), '5s');
END
$$;

-- Error texts: bounded whatever the caller sends ---------------------------------------------

CREATE OR REPLACE FUNCTION game.invalid_argument(argument text, message text, detail jsonb) RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    -- Cut: a message or detail may quote the caller's argument, which may be megabytes.
    RAISE EXCEPTION '%', left(invalid_argument.message, 300)
        USING ERRCODE = 'WF006',
              DETAIL = (jsonb_build_object('argument', left(invalid_argument.argument, 64))
                        || coalesce(invalid_argument.detail, '{}'))::text;
END
$$;

CREATE OR REPLACE FUNCTION ops.close_event(code text, at timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e game.events;
BEGIN
    IF close_event.at IS NULL OR NOT isfinite(close_event.at) THEN
        PERFORM game.invalid_argument('at', close_event.at::text, 'at must be a finite time');
    END IF;
    UPDATE game.events AS ev
    SET ends_at = close_event.at,
        starts_at = CASE WHEN ev.starts_at >= close_event.at THEN NULL ELSE ev.starts_at END,
        updated_at = now()
    WHERE ev.code = close_event.code
    RETURNING ev.* INTO e;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event "%" does not exist', left(close_event.code, 64)
            USING ERRCODE = 'WF002', DETAIL = jsonb_build_object('event_code', left(close_event.code, 64))::text;
    END IF;
    RETURN to_jsonb(e);
END
$$;

-- Settings --------------------------------------------------------------------------------------

ALTER TABLE game.config
    ADD COLUMN notification_max_age interval NOT NULL DEFAULT '30 minutes'
        CHECK (notification_max_age BETWEEN interval '1 minute' AND interval '7 days'),
    ADD COLUMN tick_batch_size integer NOT NULL DEFAULT 1000 CHECK (tick_batch_size BETWEEN 100 AND 100000);
COMMENT ON COLUMN game.config.notification_max_age IS
    'A notification not sent within this long ends as expired (a late "she is rested" misleads).';
COMMENT ON COLUMN game.config.tick_batch_size IS
    'Waifus the restore tick fills per transaction (each batch holds its rows'' locks until it commits).';

DROP VIEW ops.config;
CREATE VIEW ops.config AS
SELECT c.ledger_retention, c.notification_retention, c.notification_max_age, c.tick_batch_size FROM game.config AS c;
COMMENT ON VIEW ops.config IS 'Game settings kept in the database (change with ops.set_config).';
GRANT SELECT ON ops.config TO waifu_ops;

DROP FUNCTION ops.set_config(interval, interval);
CREATE FUNCTION ops.set_config(ledger_retention interval DEFAULT NULL, notification_retention interval DEFAULT NULL,
                               notification_max_age interval DEFAULT NULL, tick_batch_size integer DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c game.config;
BEGIN
    IF set_config.ledger_retention < interval '7 days' OR set_config.ledger_retention > interval '10 years' THEN
        PERFORM game.invalid_argument('ledger_retention', set_config.ledger_retention::text,
            'ledger_retention must be between 7 days and 10 years');
    END IF;
    IF set_config.notification_retention < interval '1 hour'
       OR set_config.notification_retention > interval '1 year' THEN
        PERFORM game.invalid_argument('notification_retention', set_config.notification_retention::text,
            'notification_retention must be between 1 hour and 1 year');
    END IF;
    IF set_config.notification_max_age < interval '1 minute' OR set_config.notification_max_age > interval '7 days' THEN
        PERFORM game.invalid_argument('notification_max_age', set_config.notification_max_age::text,
            'notification_max_age must be between 1 minute and 7 days');
    END IF;
    IF set_config.tick_batch_size NOT BETWEEN 100 AND 100000 THEN
        PERFORM game.invalid_argument('tick_batch_size', set_config.tick_batch_size::text,
            'tick_batch_size must be between 100 and 100000');
    END IF;
    UPDATE game.config AS g
    SET ledger_retention = coalesce(set_config.ledger_retention, g.ledger_retention),
        notification_retention = coalesce(set_config.notification_retention, g.notification_retention),
        notification_max_age = coalesce(set_config.notification_max_age, g.notification_max_age),
        tick_batch_size = coalesce(set_config.tick_batch_size, g.tick_batch_size)
    RETURNING g.* INTO c;
    RETURN to_jsonb(c) - 'singleton';
END
$$;
COMMENT ON FUNCTION ops.set_config(interval, interval, interval, integer) IS
$$Change game settings; a NULL argument keeps the current value. Returns every setting.
ledger_retention (7 days..10 years, default 30 days): ledger partitions wholly older are dropped by the
job ledger-partitions. notification_retention (1 hour..1 year, default 7 days): finished notifications
are purged after it. notification_max_age (1 minute..7 days, default 30 minutes): a notification not sent
by then ends as expired. tick_batch_size (100..100000, default 1000): waifus the tick fills per transaction.
Example: SELECT ops.set_config(ledger_retention => '90 days');
Errors: WF006 out of range.$$;
REVOKE ALL ON FUNCTION ops.set_config(interval, interval, interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_config(interval, interval, interval, integer) TO waifu_ops;

-- The tick's work list: full_at for every waifu -------------------------------------------------

DROP VIEW ops.overview;
DROP INDEX game.waifus_full_at_idx;
ALTER TABLE game.waifus DROP COLUMN full_at, DROP COLUMN regenerating;
ALTER TABLE game.waifus
    ADD COLUMN full_at numeric NOT NULL
        GENERATED ALWAYS AS ((dynamic ->> 'last_restore')::numeric
                             + game.energy_regen_seconds() * (game.max_energy() - (dynamic ->> 'energy')::integer))
        STORED;
COMMENT ON COLUMN game.waifus.full_at IS
$$Epoch second at which her stored energy reaches the cap (for a waifu stored at the cap: when it did, or
her adoption). Filling her does not change it, so the tick's fill is a heap-only update.$$;
COMMENT ON COLUMN game.waifus.dynamic IS
$${xp, energy, mood, loyalty: int; last_restore: epoch seconds of the energy clock}. Energy is stored as of
its clock: a waifu below the cap regains 1 per game.energy_regen_seconds() after it, and the tick stores that
only when she reaches the cap. Read it through game.regen() or the api and ops functions.$$;
CREATE INDEX waifus_full_at_idx ON game.waifus (full_at, id);

CREATE TABLE game.tick_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    cursor_full_at numeric NOT NULL,
    cursor_id bigint NOT NULL DEFAULT 0,
    last_now timestamptz,
    last_started_at timestamptz,
    last_finished_at timestamptz,
    last_duration_ms double precision,
    last_filled integer NOT NULL DEFAULT 0,
    last_notified integer NOT NULL DEFAULT 0,
    last_batches integer NOT NULL DEFAULT 0,
    runs bigint NOT NULL DEFAULT 0,
    filled_total bigint NOT NULL DEFAULT 0,
    notified_total bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE game.tick_state IS
$$The restore tick's cursor and figures (one row). Every waifu with (full_at, id) at or before the cursor
has been looked at; the last_* columns describe the last complete tick, the *_total ones count since the
migration: filled (waifus that reached the cap), notified (of them, those staged for a "she is rested":
all, the sender's claim skips players with notifications off). See ops.tick.$$;
-- Where the first tick starts: before every waifu still stored below the cap.
INSERT INTO game.tick_state (cursor_full_at)
SELECT coalesce(min(w.full_at) - 1, extract(epoch FROM now()))
FROM game.waifus AS w
WHERE (w.dynamic ->> 'energy')::integer < game.max_energy();
GRANT SELECT ON game.tick_state TO waifu_ops;

CREATE TABLE game.rested_ranges (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    after_full_at numeric NOT NULL,
    after_id bigint NOT NULL,
    upto_full_at numeric NOT NULL,
    upto_id bigint NOT NULL,
    waifus integer NOT NULL CHECK (waifus > 0),
    created_at timestamptz NOT NULL
);
COMMENT ON TABLE game.rested_ranges IS
$$"She is rested" staged by the tick, one row per batch: the waifus stored below the cap with (full_at, id) after
(after_full_at, after_id) and up to (upto_full_at, upto_id) reached it at created_at. The sender's claim
(game.expand_rested) turns the oldest rows into per-player rows of game.notifications, moving `after` on;
waifus: how many are left in the range, at most (one who spent since is no longer in it).$$;
GRANT SELECT ON game.rested_ranges TO waifu_ops;

-- One batch: the core of the tick. Called by api.restore_energy (all batches in one
-- transaction) and game.tick_batch (the job's, one transaction each); granted to nobody.
-- It reads the index and writes two small rows: no waifu is written or locked.
CREATE FUNCTION game.restore_batch(at timestamptz, batch_size integer,
                                   OUT scanned integer, OUT filled integer, OUT notified integer)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET random_page_cost = 1.1
AS $$
DECLARE
    at_epoch numeric := extract(epoch FROM restore_batch.at);
    st game.tick_state;
    horizon numeric;
    upto_full numeric;
    upto_id bigint;
    last_full numeric;
    last_id bigint;
BEGIN
    -- The row lock serialises batches of concurrent ticks (pg_cron's and a manual one).
    SELECT * INTO st FROM game.tick_state FOR UPDATE;
    -- A writer computes full_at from its own start (always later than it), so a row that
    -- a transaction still running commits later cannot land before that transaction's
    -- start: the cursor never passes the oldest one running (nor the real time).
    SELECT extract(epoch FROM least(min(a.xact_start), clock_timestamp())) INTO horizon
    FROM pg_catalog.pg_stat_activity AS a
    WHERE a.datname = current_database() AND a.backend_type = 'client backend'
      AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL;
    -- (A `now` ahead of the real time comes from a caller allowed to choose the clock, whose
    -- writers choose theirs too: the real time says nothing about their full_at.)
    IF horizon < at_epoch AND at_epoch <= extract(epoch FROM clock_timestamp()) THEN
        upto_full := horizon;
        upto_id := 0;
    ELSE
        upto_full := at_epoch;
        upto_id := 9223372036854775807;
    END IF;
    scanned := 0;
    -- The cursor only moves forward (a tick with an earlier `now`: nothing to do), so
    -- nobody is staged twice.
    IF (upto_full, upto_id) > (st.cursor_full_at, st.cursor_id) THEN
        -- The waifus that reached the cap, in the cursor's order, straight off the
        -- (full_at, id) index: it stops at batch_size. (Costed for pages on disk, the
        -- planner read every due row by a bitmap scan and sorted them: random_page_cost
        -- is set for this function, the tables it reads are in memory.)
        SELECT count(*)::integer, max(d.full_at), max(d.id) FILTER (WHERE d.last)
        INTO scanned, last_full, last_id
        FROM (SELECT w.id, w.full_at,
                     row_number() OVER (ORDER BY w.full_at, w.id) = restore_batch.batch_size AS last
              FROM game.waifus AS w
              WHERE (w.full_at, w.id) > (st.cursor_full_at, st.cursor_id) AND (w.full_at, w.id) <= (upto_full, upto_id)
                AND (w.dynamic ->> 'energy')::integer < game.max_energy()
              ORDER BY w.full_at, w.id
              LIMIT restore_batch.batch_size) AS d;
        IF scanned < restore_batch.batch_size THEN
            -- Everything up to the bound was looked at.
            last_full := upto_full;
            last_id := upto_id;
        END IF;
        IF scanned > 0 THEN
            INSERT INTO game.rested_ranges (after_full_at, after_id, upto_full_at, upto_id, waifus, created_at)
            VALUES (st.cursor_full_at, st.cursor_id, last_full, last_id, scanned, restore_batch.at);
        END IF;
        UPDATE game.tick_state AS s SET cursor_full_at = last_full, cursor_id = last_id;
    END IF;
    filled := scanned;
    notified := scanned;
    IF scanned > 0 THEN
        PERFORM pg_notify('waifu_notifications', scanned::text);
    END IF;
END
$$;
COMMENT ON FUNCTION game.restore_batch(timestamptz, integer) IS
    'One batch of the restore tick: stage up to batch_size waifus that reached the cap after the cursor (game.rested_ranges).';
REVOKE ALL ON FUNCTION game.restore_batch(timestamptz, integer) FROM PUBLIC;

-- The sender's side of the stage: per-player "she is rested" rows from the oldest ranges,
-- up to 1,000 waifus a call (at Telegram's pace, a minute of messages or more), and at
-- least `wanted` rows if the ranges hold them; concurrent senders take different ranges
-- (SKIP LOCKED). A range older than game.config.notification_max_age is dropped: its
-- messages would end as expired. Returns the rows queued.
CREATE FUNCTION game.expand_rested(at timestamptz, wanted integer) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET random_page_cost = 1.1
AS $$
DECLARE
    step constant integer := 1000;
    max_age interval := (SELECT c.notification_max_age FROM game.config AS c);
    r game.rested_ranges;
    queued integer := 0;
    looked integer := 0;
    n integer;
    seen integer;
    last_full numeric;
    last_id bigint;
BEGIN
    WHILE looked < step OR (queued < expand_rested.wanted AND looked < 10 * step) LOOP
        SELECT * INTO r FROM game.rested_ranges AS x ORDER BY x.id LIMIT 1 FOR UPDATE SKIP LOCKED;
        EXIT WHEN NOT FOUND;
        IF r.created_at < expand_rested.at - max_age THEN
            DELETE FROM game.rested_ranges AS x WHERE x.id = r.id;
            CONTINUE;
        END IF;
        WITH rested AS (
            SELECT w.id, w.owner_id, w.name, w.full_at
            FROM game.waifus AS w
            WHERE (w.full_at, w.id) > (r.after_full_at, r.after_id) AND (w.full_at, w.id) <= (r.upto_full_at, r.upto_id)
              AND (w.dynamic ->> 'energy')::integer < game.max_energy()
            ORDER BY w.full_at, w.id
            LIMIT step
        ), told AS (
            INSERT INTO game.notifications (telegram_id, kind, payload, created_at, available_at)
            SELECT x.owner_id, 'rested',
                   jsonb_build_object('waifus', jsonb_agg(jsonb_build_object(
                       'waifu_id', x.id, 'name', x.name, 'energy', game.max_energy()) ORDER BY x.id)),
                   r.created_at, expand_rested.at
            FROM rested AS x
            -- A look-up by key per waifu: as a join the planner chose a hash join over every player.
            WHERE (SELECT p.notifications FROM game.players AS p WHERE p.telegram_id = x.owner_id)
            GROUP BY x.owner_id
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM rested)::integer, (SELECT count(*) FROM told)::integer,
               y.full_at, y.id
        INTO seen, n, last_full, last_id
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (SELECT x.full_at, x.id FROM rested AS x ORDER BY x.full_at DESC, x.id DESC LIMIT 1) AS y ON true;
        queued := queued + n;
        looked := looked + greatest(seen, 1);
        IF seen < step THEN
            DELETE FROM game.rested_ranges AS x WHERE x.id = r.id;
        ELSE
            UPDATE game.rested_ranges AS x
            SET after_full_at = last_full, after_id = last_id, waifus = greatest(x.waifus - seen, 1)
            WHERE x.id = r.id;
        END IF;
    END LOOP;
    RETURN queued;
END
$$;
COMMENT ON FUNCTION game.expand_rested(timestamptz, integer) IS
    'Turn the oldest staged "she is rested" ranges into per-player notification rows (about `wanted`); returns how many.';
REVOKE ALL ON FUNCTION game.expand_rested(timestamptz, integer) FROM PUBLIC;

-- Figures of a tick run, kept in game.tick_state (first: the run's first batch).
CREATE FUNCTION game.record_tick(first boolean, at timestamptz, started timestamptz, batches integer,
                                 filled integer, notified integer) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE game.tick_state AS s
    SET last_now = record_tick.at,
        last_started_at = CASE WHEN record_tick.first THEN record_tick.started ELSE s.last_started_at END,
        last_finished_at = clock_timestamp(),
        last_duration_ms = extract(epoch FROM clock_timestamp()
            - CASE WHEN record_tick.first THEN record_tick.started ELSE s.last_started_at END) * 1000,
        last_batches = CASE WHEN record_tick.first THEN 0 ELSE s.last_batches END + record_tick.batches,
        last_filled = CASE WHEN record_tick.first THEN 0 ELSE s.last_filled END + record_tick.filled,
        last_notified = CASE WHEN record_tick.first THEN 0 ELSE s.last_notified END + record_tick.notified,
        runs = s.runs + CASE WHEN record_tick.first THEN 1 ELSE 0 END,
        filled_total = s.filled_total + record_tick.filled,
        notified_total = s.notified_total + record_tick.notified;
END;
REVOKE ALL ON FUNCTION game.record_tick(boolean, timestamptz, timestamptz, integer, integer, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION api.restore_energy(now timestamptz DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(restore_energy.now);
    started timestamptz := clock_timestamp();
    batch_size integer := (SELECT c.tick_batch_size FROM game.config AS c);
    b record;
    batches integer := 0;
    filled integer := 0;
    notified integer := 0;
BEGIN
    LOOP
        b := game.restore_batch(at, batch_size);
        batches := batches + 1;
        filled := filled + b.filled;
        notified := notified + b.notified;
        EXIT WHEN b.scanned < batch_size;
    END LOOP;
    PERFORM game.record_tick(true, at, started, batches, filled, notified);
    RETURN filled;
END
$$;
COMMENT ON FUNCTION api.restore_energy(timestamptz) IS
$$Find every waifu whose energy has reached the cap since the last tick, in one transaction; returns how many.
No waifu is written: her energy is computed from her clock at every read. Their players' "she is rested"
are staged (game.rested_ranges; the sender's claim makes one message per player, if the player has them
on), then NOTIFY waifu_notifications. pg_cron runs the same work in batches, each its own transaction:
CALL game.restore_energy_job() (job restore-energy, every minute). Each waifu is found once: a `now` before
the last tick's finds nobody. Catches up exactly after an outage. Reads never depend on it.$$;

-- One batch of the job, in its own transaction: the server's time only. Returns whether
-- more may be due (the batch was full).
CREATE FUNCTION game.tick_batch(first boolean) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    batch_size integer := (SELECT c.tick_batch_size FROM game.config AS c);
    b record;
BEGIN
    b := game.restore_batch(now(), batch_size);
    PERFORM game.record_tick(coalesce(tick_batch.first, true), now(), started, 1, b.filled, b.notified);
    RETURN b.scanned >= batch_size;
END
$$;
COMMENT ON FUNCTION game.tick_batch(boolean) IS
    'One batch of the restore tick at the server''s time (game.restore_energy_job calls it); true if more may be due.';
REVOKE ALL ON FUNCTION game.tick_batch(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.tick_batch(boolean) TO waifu_cron, waifu_ops;

-- A procedure so that it can commit between batches. SECURITY INVOKER and no SET clause
-- (PostgreSQL allows transaction control only so): every name is schema-qualified, and
-- its callers (waifu_cron, waifu_ops) may create no objects to shadow them with.
CREATE PROCEDURE game.restore_energy_job()
    LANGUAGE plpgsql
AS $$
DECLARE
    first pg_catalog.bool := true;
    deadline pg_catalog.timestamptz := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => 50);
BEGIN
    -- Stop before the next minute's run is due; it goes on from the cursor.
    WHILE game.tick_batch(first) AND pg_catalog.clock_timestamp() < deadline LOOP
        COMMIT;
        first := false;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE game.restore_energy_job() IS
$$The restore tick as pg_cron runs it (job restore-energy, every minute): batches of
game.config.tick_batch_size, each its own short transaction, until nothing is due (at most 50 s).$$;
REVOKE ALL ON PROCEDURE game.restore_energy_job() FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE game.restore_energy_job() TO waifu_cron, waifu_ops;

DO $$
BEGIN
    PERFORM cron.unschedule(j.jobid) FROM cron.job AS j WHERE j.jobname = 'restore-energy';
    PERFORM cron.schedule_in_database('restore-energy', '* * * * *', 'CALL game.restore_energy_job()',
                                      current_database(), 'waifu_cron');
END
$$;

CREATE FUNCTION ops.reset_tick(since timestamptz DEFAULT now() - interval '1 hour') RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF reset_tick.since IS NULL OR NOT isfinite(reset_tick.since) OR reset_tick.since > now() THEN
        PERFORM game.invalid_argument('since', reset_tick.since::text, 'since must be a time in the past');
    END IF;
    UPDATE game.tick_state AS s
    SET cursor_full_at = least(s.cursor_full_at, extract(epoch FROM reset_tick.since)), cursor_id = 0;
    RETURN (SELECT to_jsonb(s) - 'singleton' FROM game.tick_state AS s);
END
$$;
COMMENT ON FUNCTION ops.reset_tick(timestamptz) IS
$$Move the tick's cursor back to `since` (default an hour ago): the next ticks stage a "she is rested" again for
every waifu stored below the cap that reached it since then. For after stored clocks were written by hand.
The tick keeps no mark of whom it told: players told since then are told again (about the waifus still
rested). Returns game.tick_state. Errors: WF006 since NULL, infinite or in the future.$$;
REVOKE ALL ON FUNCTION ops.reset_tick(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.reset_tick(timestamptz) TO waifu_ops;

CREATE VIEW ops.tick AS
SELECT s.last_now, s.last_started_at, s.last_finished_at, s.last_duration_ms, s.last_batches, s.last_filled,
       s.last_notified, s.runs, s.filled_total, s.notified_total,
       to_timestamp(s.cursor_full_at::double precision) AS cursor_at,
       (SELECT coalesce(sum(r.waifus), 0) FROM game.rested_ranges AS r) AS rested_staged,
       (SELECT count(*) FROM game.waifus AS w
        WHERE w.full_at > s.cursor_full_at AND w.full_at <= extract(epoch FROM now())
          AND (w.dynamic ->> 'energy')::integer < game.max_energy()) AS due_now
FROM game.tick_state AS s;
COMMENT ON VIEW ops.tick IS
    'The restore tick: its last run (duration, batches, filled, notified), totals, cursor, "rested" staged (waifus, at most) and what is due now.';
GRANT SELECT ON ops.tick TO waifu_ops;

CREATE VIEW ops.overview AS
SELECT (SELECT count(*) FROM game.players) AS players,
       (SELECT count(*) FROM game.waifus) AS waifus,
       (SELECT count(*) FROM game.waifus AS w WHERE w.full_at > extract(epoch FROM now())) AS waifus_below_max_energy,
       (SELECT count(*) FROM game.participations AS p WHERE p.participated_at > now() - interval '24 hours')
           AS participations_24h,
       (SELECT count(*) FROM game.events AS e WHERE game.event_is_open(e, now())) AS open_events;
COMMENT ON VIEW ops.overview IS 'One-row summary: players, waifus, how many regenerate, activity in 24 h.';
GRANT SELECT ON ops.overview TO waifu_ops;

-- The ledger's upkeep never waits long for a lock (a DROP of an old week needs the
-- parent's ACCESS EXCLUSIVE lock, and every participation would queue behind it while it
-- waits): it gives up after 2 s and the next hourly run tries again.
ALTER FUNCTION game.maintain_ledger(timestamptz, integer) SET lock_timeout = '2s';
DO $$
BEGIN
    PERFORM cron.schedule_in_database('ledger-partitions', '7 * * * *', 'SELECT game.maintain_ledger()',
                                      current_database(), 'waifu_cron');
END
$$;

-- The shared rate limiter ------------------------------------------------------------------------

CREATE TABLE game.rate_limits (
    bucket text PRIMARY KEY CHECK (bucket ~ '^[a-z_]{1,32}$'),
    rate double precision NOT NULL CHECK (rate > 0 AND rate <= 1000000),
    burst integer NOT NULL CHECK (burst BETWEEN 1 AND 1000000),
    description text NOT NULL
);
COMMENT ON TABLE game.rate_limits IS
    'Rate limits shared by every bot and web process: rate per second and burst per key. Edit with ops.set_rate_limit.';
INSERT INTO game.rate_limits (bucket, rate, burst, description) VALUES
    ('chat_user', 2, 20, 'chat updates (messages, button taps) per Telegram user'),
    ('group_chat', 5, 30, 'updates per group chat'),
    ('group_send', 0.25, 5, 'messages the bot sends into one group chat (Telegram allows 20 a minute: burst + 60 * rate)'),
    ('web_action', 2, 10, 'Mini App actions (POST) per player'),
    ('web_address', 20, 200, 'Mini App requests per client address, before sign-in');
GRANT SELECT ON game.rate_limits TO waifu_ops;

-- UNLOGGED: a bucket is worth nothing after a crash (empty is "full budget"), and every
-- call writes its row. tat: GCRA's theoretical arrival time, epoch seconds.
CREATE UNLOGGED TABLE game.rate_buckets (
    bucket text NOT NULL,
    key text NOT NULL,
    tat double precision NOT NULL,
    granted integer NOT NULL DEFAULT 1,
    PRIMARY KEY (bucket, key)
) WITH (fillfactor = 70);
COMMENT ON TABLE game.rate_buckets IS
$$State of the shared rate limiter (GCRA: tat = when the key's bucket is full again; granted: requests the last
take got, 0 if it was refused). Unlogged; purged every 5 minutes.$$;

-- GCRA with a cost: as many of `wanted` requests as the key's bucket holds now (0 if none:
-- `wait` is then the seconds until one would be). One upsert.
CREATE FUNCTION game.take_tokens(bucket text, key text, wanted integer, OUT granted integer,
                                 OUT wait double precision)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r game.rate_limits;
    t double precision := extract(epoch FROM clock_timestamp())::double precision;
    n integer;
    emission double precision;
    tolerance double precision;
    tat double precision;
BEGIN
    SELECT * INTO r FROM game.rate_limits AS x WHERE x.bucket = take_tokens.bucket;
    IF NOT FOUND THEN
        PERFORM game.invalid_argument('bucket', take_tokens.bucket, 'unknown rate limit bucket (see ops.rate_limits)');
    END IF;
    -- At most a quarter of the burst at once: a process holding requests it has not used
    -- yet never keeps the others sharing the key out for long.
    n := least(greatest(take_tokens.wanted, 1), greatest(r.burst / 4, 1), 1000);
    emission := 1.0 / r.rate;
    tolerance := emission * (r.burst - 1);
    -- Room now: the requests that fit before the bucket's tolerance is used up (the first
    -- one whenever greatest(tat, t) - t <= tolerance).
    INSERT INTO game.rate_buckets AS b (bucket, key, tat, granted)
    VALUES (take_tokens.bucket, take_tokens.key, t + emission * least(n, r.burst), least(n, r.burst))
    ON CONFLICT ON CONSTRAINT rate_buckets_pkey DO UPDATE
        SET granted = greatest(least(n, floor((tolerance - (greatest(b.tat, t) - t)) / emission)::integer + 1), 0),
            tat = greatest(b.tat, t)
                  + emission * greatest(least(n, floor((tolerance - (greatest(b.tat, t) - t)) / emission)::integer + 1), 0)
    RETURNING b.granted, b.tat INTO granted, tat;
    wait := CASE WHEN granted > 0 THEN 0::double precision ELSE greatest(tat - tolerance - t, 0.001) END;
END
$$;
COMMENT ON FUNCTION game.take_tokens(text, text, integer) IS
    'GCRA: take up to `wanted` requests for key in bucket; {granted, wait: 0, or the seconds until one would be}.';
REVOKE ALL ON FUNCTION game.take_tokens(text, text, integer) FROM PUBLIC;

CREATE FUNCTION game.take_token(bucket text, key text) RETURNS double precision
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
    RETURN (game.take_tokens(take_token.bucket, take_token.key, 1)).wait;
COMMENT ON FUNCTION game.take_token(text, text) IS
    'GCRA: take one request for key in bucket; 0 if allowed, else the seconds until it would be.';
REVOKE ALL ON FUNCTION game.take_token(text, text) FROM PUBLIC;

CREATE FUNCTION api.rate_limit(bucket text, key text) RETURNS double precision
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF rate_limit.key IS NULL OR rate_limit.key = '' OR length(rate_limit.key) > 128 THEN
        PERFORM game.check_text('key', rate_limit.key, 128, true);
    END IF;
    RETURN game.take_token(rate_limit.bucket, rate_limit.key);
END
$$;
COMMENT ON FUNCTION api.rate_limit(text, text) IS
$$Take one request from a shared rate limit: 0 if allowed, else the seconds until it would be.
bucket: a row of ops.rate_limits (chat_user, group_chat, group_send, web_action, web_address); key: who (a
user id, a chat id, an address; 1-128 characters). Every bot and web process shares the budget.
Errors: WF006 unknown bucket, key empty or too long.$$;
REVOKE ALL ON FUNCTION api.rate_limit(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.rate_limit(text, text) TO waifu_bot;

-- A set of one row (RETURNS TABLE), for PL/Proxy's generated wrappers (db/partitions.py).
CREATE FUNCTION api.rate_limit_lease(bucket text, key text, wanted integer)
    RETURNS TABLE (granted integer, retry_after double precision)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    taken record;
BEGIN
    IF rate_limit_lease.key IS NULL OR rate_limit_lease.key = '' OR length(rate_limit_lease.key) > 128 THEN
        PERFORM game.check_text('key', rate_limit_lease.key, 128, true);
    END IF;
    IF rate_limit_lease.wanted IS NULL OR rate_limit_lease.wanted NOT BETWEEN 1 AND 1000 THEN
        PERFORM game.invalid_argument('wanted', rate_limit_lease.wanted::text, 'wanted must be 1 to 1000');
    END IF;
    taken := game.take_tokens(rate_limit_lease.bucket, rate_limit_lease.key, rate_limit_lease.wanted);
    granted := taken.granted;
    retry_after := taken.wait;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION api.rate_limit_lease(text, text, integer) IS
$$Take up to `wanted` requests (1-1000; at most a quarter of the bucket's burst) from a shared rate limit at
once, for a process to hand out itself: {granted: how many (0: refused), retry_after: 0, or the seconds until
one would be}. Requests taken are spent whether or not the process uses them, so a key never gets more than
its budget. Same buckets and
keys as api.rate_limit. Errors: WF006 unknown bucket, key empty or too long, wanted outside 1..1000.$$;
REVOKE ALL ON FUNCTION api.rate_limit_lease(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.rate_limit_lease(text, text, integer) TO waifu_bot;

CREATE UNLOGGED TABLE game.seen_updates (
    bot_id bigint NOT NULL,
    update_id bigint NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, update_id)
);
COMMENT ON TABLE game.seen_updates IS
    'Telegram updates taken by some bot process (api.admit_update), kept an hour: a redelivery is handled once.';

CREATE FUNCTION api.admit_update(bot_id bigint, update_id bigint, user_id bigint, chat_id bigint) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wait double precision := 0::double precision;
    scope text := 'user';
BEGIN
    IF admit_update.bot_id IS NULL OR admit_update.bot_id <= 0 OR admit_update.update_id IS NULL
       OR admit_update.update_id < 0 THEN
        PERFORM game.check_id('bot_id', admit_update.bot_id);
        PERFORM game.invalid_argument('update_id', admit_update.update_id::text, 'update_id must be 0 or more');
    END IF;
    INSERT INTO game.seen_updates (bot_id, update_id) VALUES (admit_update.bot_id, admit_update.update_id)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN '{"admit": false, "reason": "duplicate"}'::jsonb;
    END IF;
    IF admit_update.user_id IS NOT NULL THEN
        wait := game.take_token('chat_user', admit_update.user_id::text);
    END IF;
    -- Groups and supergroups have negative chat ids in the Bot API.
    IF wait = 0 AND admit_update.chat_id < 0 THEN
        wait := game.take_token('group_chat', admit_update.chat_id::text);
        scope := 'group';
    END IF;
    IF wait > 0 THEN
        RETURN jsonb_build_object('admit', false, 'reason', 'limited', 'scope', scope,
                                  'retry_after', round(wait::numeric, 3));
    END IF;
    RETURN '{"admit": true}'::jsonb;
END
$$;
COMMENT ON FUNCTION api.admit_update(bigint, bigint, bigint, bigint) IS
$$Whether a bot process should handle a Telegram update: {"admit": true}, or {"admit": false, "reason":
"duplicate"} (another process, or this one, already took this update_id) or {"admit": false, "reason":
"limited", "scope": "user" | "group", "retry_after": seconds} (the user's chat_user or the group's
group_chat limit).
bot_id: the bot's id (the token's number); user_id, chat_id may be NULL. Errors: WF006 bad bot_id or update_id.$$;
REVOKE ALL ON FUNCTION api.admit_update(bigint, bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.admit_update(bigint, bigint, bigint, bigint) TO waifu_bot;

CREATE FUNCTION api.forget_update(bot_id bigint, update_id bigint) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM game.seen_updates AS s WHERE s.bot_id = forget_update.bot_id AND s.update_id = forget_update.update_id;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION api.forget_update(bigint, bigint) IS
    'Let an update taken with api.admit_update be handled again (its handling failed); true if it was taken.';
REVOKE ALL ON FUNCTION api.forget_update(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.forget_update(bigint, bigint) TO waifu_bot;

CREATE FUNCTION game.purge_rate_limits() RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    buckets integer;
    updates integer;
BEGIN
    -- A bucket whose tat has passed is full: the same as no row.
    DELETE FROM game.rate_buckets AS b WHERE b.tat < extract(epoch FROM now()) - 1;
    GET DIAGNOSTICS buckets = ROW_COUNT;
    DELETE FROM game.seen_updates AS s WHERE s.seen_at < now() - interval '1 hour';
    GET DIAGNOSTICS updates = ROW_COUNT;
    RETURN jsonb_build_object('buckets', buckets, 'updates', updates);
END
$$;
COMMENT ON FUNCTION game.purge_rate_limits() IS
    'Drop full rate-limit buckets and updates seen over an hour ago (job purge-rate-limits, every 5 minutes).';
REVOKE ALL ON FUNCTION game.purge_rate_limits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.purge_rate_limits() TO waifu_cron, waifu_ops;
DO $$
BEGIN
    PERFORM cron.schedule_in_database('purge-rate-limits', '*/5 * * * *', 'SELECT game.purge_rate_limits()',
                                      current_database(), 'waifu_cron');
END
$$;

CREATE FUNCTION ops.set_rate_limit(bucket text, rate double precision, burst integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r game.rate_limits;
BEGIN
    IF set_rate_limit.rate IS NULL OR NOT set_rate_limit.rate BETWEEN 0.001 AND 1000000 THEN
        PERFORM game.invalid_argument('rate', set_rate_limit.rate::text, 'rate must be 0.001 to 1000000 per second');
    END IF;
    IF set_rate_limit.burst IS NULL OR set_rate_limit.burst NOT BETWEEN 1 AND 1000000 THEN
        PERFORM game.invalid_argument('burst', set_rate_limit.burst::text, 'burst must be 1 to 1000000');
    END IF;
    UPDATE game.rate_limits AS x SET rate = set_rate_limit.rate, burst = set_rate_limit.burst
    WHERE x.bucket = set_rate_limit.bucket
    RETURNING x.* INTO r;
    IF NOT FOUND THEN
        PERFORM game.invalid_argument('bucket', set_rate_limit.bucket, 'unknown bucket (see ops.rate_limits)');
    END IF;
    RETURN to_jsonb(r);
END
$$;
COMMENT ON FUNCTION ops.set_rate_limit(text, double precision, integer) IS
$$Change a shared rate limit: requests per second per key and the burst. Every process uses it at once.
Example: SELECT ops.set_rate_limit('chat_user', 1, 10);
Errors: WF006 unknown bucket, rate outside 0.001..1000000, burst outside 1..1000000.$$;
REVOKE ALL ON FUNCTION ops.set_rate_limit(text, double precision, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_rate_limit(text, double precision, integer) TO waifu_ops;

CREATE VIEW ops.rate_limits AS
SELECT l.bucket, l.rate, l.burst, l.description,
       (SELECT count(*) FROM game.rate_buckets AS b WHERE b.bucket = l.bucket AND b.tat > extract(epoch FROM now()))
           AS active_keys,
       (SELECT count(*) FROM game.rate_buckets AS b WHERE b.bucket = l.bucket AND b.granted = 0
            AND b.tat > extract(epoch FROM now())) AS refused_keys
FROM game.rate_limits AS l
ORDER BY l.bucket;
COMMENT ON VIEW ops.rate_limits IS
    'Shared rate limits (change with ops.set_rate_limit), keys in use and keys whose last request was refused.';
GRANT SELECT ON ops.rate_limits TO waifu_ops;

-- One long-polling process per bot --------------------------------------------------------------

-- A session-level advisory lock in a key space of its own: held by the connection that
-- called, released when it closes (or by api.release_polling_lock).
CREATE FUNCTION api.try_polling_lock(bot_id bigint) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM game.check_id('bot_id', try_polling_lock.bot_id);
    RETURN pg_try_advisory_lock(hashtextextended('waifu:polling:' || try_polling_lock.bot_id, 0));
END
$$;
COMMENT ON FUNCTION api.try_polling_lock(bigint) IS
$$Take the polling lock of a bot (bot_id: the token's number) for this connection: true if taken, false if
another connection holds it. Kept until api.release_polling_lock or the connection closes.
Errors: WF006 bot_id not positive.$$;
REVOKE ALL ON FUNCTION api.try_polling_lock(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.try_polling_lock(bigint) TO waifu_bot;

CREATE FUNCTION api.release_polling_lock(bot_id bigint) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM game.check_id('bot_id', release_polling_lock.bot_id);
    -- pg_advisory_unlock warns when this connection does not hold it: asked first.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_locks AS l
                   WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted AND l.objsubid = 1
                     AND ((l.classid::bigint << 32) | l.objid::bigint)
                         = hashtextextended('waifu:polling:' || release_polling_lock.bot_id, 0)) THEN
        RETURN false;
    END IF;
    RETURN pg_advisory_unlock(hashtextextended('waifu:polling:' || release_polling_lock.bot_id, 0));
END
$$;
COMMENT ON FUNCTION api.release_polling_lock(bigint) IS
    'Release the polling lock of a bot held by this connection; true if it held it. Errors: WF006 bot_id not positive.';
REVOKE ALL ON FUNCTION api.release_polling_lock(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.release_polling_lock(bigint) TO waifu_bot;

-- Participations' request keys: one table, no partitions ---------------------------------------

-- The look-up of a key in the weekly ledger partitions cost a participation a lock on every
-- partition and index of the ledger (PostgreSQL 15 locks them all for a cached plan, pruned or
-- not: 29 relation locks a call, 13 of them past the fast path) and an advisory lock against a
-- twin key in another week's partition. A key here is one primary-key insert, which also
-- serialises twins; the keys are deleted with the ledger's retention (purge-player-history).
CREATE TABLE game.request_keys (
    telegram_id bigint NOT NULL,
    request_key text NOT NULL,
    waifu_id bigint NOT NULL,
    event_code text NOT NULL,
    participated_at timestamptz NOT NULL,
    CONSTRAINT request_keys_pkey PRIMARY KEY (telegram_id, request_key)
);
COMMENT ON TABLE game.request_keys IS
    'Request keys of the participations the ledger keeps (answer a retry; deleted after game.config.ledger_retention).';
CREATE INDEX request_keys_at_brin ON game.request_keys USING brin (participated_at);
INSERT INTO game.request_keys (telegram_id, request_key, waifu_id, event_code, participated_at)
SELECT p.telegram_id, p.request_key, p.waifu_id, p.event_code, p.participated_at FROM game.participations AS p;
GRANT SELECT ON game.request_keys TO waifu_ops;

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

COMMENT ON FUNCTION api.participate_in_event(bigint, bigint, text, text, timestamptz) IS
$$Take part in an event: restore pending energy, pay the cost, add XP, move mood and loyalty
(clamped to 0..game.max_stat()), record it in the ledger - one transaction, waifu row locked.
request_key: the same key again (within the ledger's retention) returns the recorded changes with the
waifu's current stats ("replayed": true) and changes nothing.
Returns the api.waifu_stats shape plus {event_code, event_title, request_key, participated_at,
changes: {energy, xp, mood, loyalty, level_before, level_after, leveled_up}, replayed}.
Errors (DETAIL is JSON): WF001 not enough energy {energy_needed, energy, enough_at};
WF002 event unknown or not open; WF003 cooldown {available_at, remaining_seconds};
WF004 waifu not found or another player's; WF005 not registered; WF006 bad argument or a `now`
the caller may not choose; WF007 request key already used for a different action.$$;

-- The outbox: expiry, stale "rested", a claim takes whole players ------------------------------

ALTER TABLE game.notifications DROP CONSTRAINT notifications_outcome_check;
ALTER TABLE game.notifications ADD CONSTRAINT notifications_outcome_check
    CHECK (outcome IN ('sent', 'blocked', 'off', 'failed', 'expired', 'stale'));
COMMENT ON COLUMN game.notifications.outcome IS
$$How the row ended (sent_at is then its time): sent, blocked (403: notifications turned off), off (the player
turned them off before it went out), failed (refused for good or too many attempts), expired (not sent within
game.config.notification_max_age), stale (a "rested" whose waifus were no longer rested when it was claimed).$$;
-- A claim takes every waiting row of the players it picks.
CREATE INDEX notifications_player_queue_idx ON game.notifications (telegram_id, id) WHERE sent_at IS NULL;

CREATE OR REPLACE FUNCTION api.claim_notifications(worker text, batch_size integer, lease_seconds integer,
                                                   now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(claim_notifications.now);
    max_attempts constant integer := 10;
    max_age interval := (SELECT c.notification_max_age FROM game.config AS c);
    claimed jsonb;
BEGIN
    PERFORM game.check_text('worker', claim_notifications.worker, 64, true);
    IF claim_notifications.batch_size IS NULL OR claim_notifications.batch_size NOT BETWEEN 1 AND 1000 THEN
        PERFORM game.invalid_argument('batch_size', claim_notifications.batch_size::text,
                                      'batch_size must be between 1 and 1000');
    END IF;
    IF claim_notifications.lease_seconds IS NULL OR claim_notifications.lease_seconds NOT BETWEEN 1 AND 3600 THEN
        PERFORM game.invalid_argument('lease_seconds', claim_notifications.lease_seconds::text,
                                      'lease_seconds must be between 1 and 3600');
    END IF;

    -- The outbox short of a batch: "she is rested" rows from the tick's stage, built as
    -- they can be sent rather than all at once in the tick.
    IF (SELECT count(*) FROM (SELECT FROM game.notifications AS n WHERE n.sent_at IS NULL AND n.available_at <= at
                              LIMIT claim_notifications.batch_size) AS due) < claim_notifications.batch_size
       AND EXISTS (SELECT FROM game.rested_ranges) THEN
        PERFORM game.expand_rested(at, claim_notifications.batch_size);
    END IF;

    -- Too old to be true any more: ended, never sent (oldest first, bounded per call).
    IF (SELECT n.created_at FROM game.notifications AS n WHERE n.sent_at IS NULL ORDER BY n.id LIMIT 1)
       < at - max_age THEN
        UPDATE game.notifications AS n SET sent_at = at, outcome = 'expired'
        WHERE n.id IN (SELECT x.id FROM game.notifications AS x
                       WHERE x.sent_at IS NULL AND x.available_at <= at AND x.created_at < at - max_age
                       ORDER BY x.id LIMIT 10000
                       FOR UPDATE SKIP LOCKED);
    END IF;

    WITH first_rows AS (
        -- The players of the oldest due rows that no other sender holds right now.
        SELECT n.telegram_id
        FROM game.notifications AS n
        WHERE n.sent_at IS NULL AND n.available_at <= at
        ORDER BY n.id
        LIMIT claim_notifications.batch_size
        FOR UPDATE SKIP LOCKED
    ), chosen AS (
        SELECT DISTINCT f.telegram_id FROM first_rows AS f
    ), picked AS (
        -- Every due row of those players: one message each. A "she is rested" names only
        -- the waifus still rested now (none left: the row ends as stale).
        SELECT n.id, pl.notifications AS wanted, n.attempts,
               CASE WHEN n.kind = 'rested' THEN jsonb_build_object('waifus', coalesce((
                   SELECT jsonb_agg(e.value ORDER BY (e.value ->> 'waifu_id')::bigint)
                   FROM jsonb_array_elements(n.payload -> 'waifus') AS e
                   JOIN game.waifus AS w ON w.id = (e.value ->> 'waifu_id')::bigint
                   WHERE (game.regen(w.dynamic, at) ->> 'energy')::integer >= game.max_energy()), '[]'::jsonb))
                    ELSE n.payload END AS current_payload
        FROM chosen AS c
        JOIN game.notifications AS n ON n.telegram_id = c.telegram_id
        JOIN game.players AS pl ON pl.telegram_id = n.telegram_id
        WHERE n.sent_at IS NULL AND n.available_at <= at
        FOR UPDATE OF n SKIP LOCKED
    ), claimed_rows AS (
        UPDATE game.notifications AS n
        SET claimed_by = claim_notifications.worker,
            attempts = n.attempts + 1,
            available_at = at + make_interval(secs => claim_notifications.lease_seconds),
            sent_at = CASE WHEN NOT picked.wanted OR picked.attempts >= max_attempts
                                OR picked.current_payload -> 'waifus' = '[]'::jsonb THEN at END,
            outcome = CASE WHEN NOT picked.wanted THEN 'off' WHEN picked.attempts >= max_attempts THEN 'failed'
                           WHEN picked.current_payload -> 'waifus' = '[]'::jsonb THEN 'stale' END
        FROM picked
        WHERE n.id = picked.id
        RETURNING n.*, picked.current_payload
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', c.id, 'telegram_id', c.telegram_id, 'kind', c.kind, 'payload', c.current_payload,
               'created_at', c.created_at, 'attempts', c.attempts, 'lease_until', c.available_at,
               'language', pl.language, 'language_code', pl.language_code)
               ORDER BY c.telegram_id, c.id), '[]'::jsonb)
    INTO claimed
    FROM claimed_rows AS c
    JOIN game.players AS pl ON pl.telegram_id = c.telegram_id
    WHERE c.sent_at IS NULL;
    RETURN claimed;
END
$$;
COMMENT ON FUNCTION api.claim_notifications(text, integer, integer, timestamptz) IS
$$Claim the due notifications of up to batch_size players for this sender (worker: any name unique per
process): every due row of each player picked, so the sender merges them into one message.
Each is leased for lease_seconds: not finished by then (the sender died), it is claimed again.
Rows of players who turned notifications off end as 'off', rows claimed 10 times as 'failed', rows older
than game.config.notification_max_age as 'expired', a "rested" whose waifus are no longer rested as 'stale';
none of them is returned. A "rested" row's payload names only the waifus still rested.
Concurrent senders never get the same row (FOR UPDATE SKIP LOCKED).
Returns [{id, telegram_id, kind, payload, created_at, attempts, lease_until, language, language_code}]
ordered by player. Errors: WF006 worker missing, batch_size not 1..1000, lease_seconds not 1..3600,
or a `now` this caller may not choose.$$;

DROP FUNCTION game.purge_player_history(timestamptz);
CREATE FUNCTION game.purge_player_history() RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    notifications integer;
    claims integer;
    keys integer;
BEGIN
    -- The server's time only: a caller's clock far ahead would delete the records that
    -- answer retried requests. Finished rows are kept for the operator (what went out,
    -- what was blocked) for game.config.notification_retention (ops.set_config).
    DELETE FROM game.notifications AS n
    WHERE n.sent_at < now() - (SELECT c.notification_retention FROM game.config AS c);
    GET DIAGNOSTICS notifications = ROW_COUNT;
    -- A claim is needed only to answer a retried request key, and streaks live in players.
    DELETE FROM game.daily_claims AS c WHERE c.claimed_at < now() - interval '90 days';
    GET DIAGNOSTICS claims = ROW_COUNT;
    -- Participations' keys are answered as long as the ledger keeps the participation.
    DELETE FROM game.request_keys AS k
    WHERE k.participated_at < now() - (SELECT c.ledger_retention FROM game.config AS c);
    GET DIAGNOSTICS keys = ROW_COUNT;
    RETURN jsonb_build_object('notifications', notifications, 'daily_claims', claims, 'request_keys', keys);
END
$$;
COMMENT ON FUNCTION game.purge_player_history() IS
$$Delete finished notifications older than game.config.notification_retention (default 7 days), daily
claims older than 90 days and participations' request keys older than game.config.ledger_retention, as of
the server's time. Run by pg_cron (job purge-player-history, hourly, as waifu_cron).
Returns {notifications, daily_claims, request_keys}: rows deleted.$$;
REVOKE ALL ON FUNCTION game.purge_player_history() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.purge_player_history() TO waifu_cron;

-- The daily reward: a calendar day AND 20 hours ------------------------------------------------

ALTER TABLE game.players ADD COLUMN daily_last_at timestamptz;
COMMENT ON COLUMN game.players.daily_last_at IS 'When the last daily reward was claimed (the 20-hour rule).';
UPDATE game.players AS p
SET daily_last_at = (SELECT max(c.claimed_at) FROM game.daily_claims AS c WHERE c.telegram_id = p.telegram_id)
WHERE p.daily_last IS NOT NULL;

CREATE FUNCTION game.daily_hours() RETURNS interval
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$BEGIN RETURN interval '20 hours'; END$$;
COMMENT ON FUNCTION game.daily_hours() IS
    'Least time between two daily claims, whatever the timezone does (the calendar day rule comes on top).';
REVOKE ALL ON FUNCTION game.daily_hours() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.daily_hours() TO waifu_ops;

-- When the next claim is allowed: the next calendar day in the player's timezone, and
-- game.daily_hours() after the last claim (NULL: never claimed).
CREATE FUNCTION game.daily_available_at(p game.players) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN (p).daily_last IS NOT NULL
            THEN greatest(game.day_start((p).timezone, (p).daily_last + 1),
                          coalesce((p).daily_last_at + game.daily_hours(), '-infinity'::timestamptz)) END;
COMMENT ON FUNCTION game.daily_available_at(game.players) IS
    'When a player may claim the daily reward again: their next calendar day and 20 hours after the last claim (NULL: now).';
REVOKE ALL ON FUNCTION game.daily_available_at(game.players) FROM PUBLIC;

CREATE OR REPLACE FUNCTION game.daily_status(p game.players, at timestamptz) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION api.claim_daily(telegram_id bigint, request_key text, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION api.claim_daily(bigint, text, timestamptz) IS
$$Claim today's daily reward: every waifu of the player gets the reward of the streak's day
(game.daily_rewards: energy up to the cap, XP, mood and loyalty up to the cap).
One claim per calendar day in the player's timezone (UTC unless they set one), and at least 20 hours
(game.daily_hours()) after the previous claim whatever the timezone does. The streak goes on after a
claim the day before and starts again at 1 after a missed day.
request_key: the same key again returns the recorded result ("replayed": true), any day.
Returns {telegram_id, day, streak, reward: {energy, xp, mood, loyalty}, waifus: [api.waifu_stats
shape + gained: {energy, xp, mood, loyalty}], claimed_at, next_at, request_key, replayed}.
Errors: WF004 the player has no waifu; WF005 not registered; WF006 missing/too long request_key or
a `now` this caller may not choose; WF008 not yet {limit: "daily", available_at, day, streak, timezone}.$$;

COMMENT ON FUNCTION api.set_player_setting(bigint, text, text, timestamptz) IS
$$Change one setting; returns the settings (api.player_settings shape).
name: notifications (value on|off), language (auto|en|ru), timezone (an IANA name such as
Europe/Moscow, any case, or UTC). Changing the timezone moves the day boundary of the daily
reward, but a claim always waits for a new calendar day and 20 hours after the last one.
Errors: WF005 not registered; WF006 unknown name or value, or a `now` this caller may not choose.$$;

-- The operator's list of functions ------------------------------------------------------------

CREATE VIEW ops.functions AS
SELECT n.nspname AS schema, p.proname AS name,
       pg_get_function_arguments(p.oid) AS arguments,
       CASE p.prokind WHEN 'p' THEN 'procedure' ELSE pg_get_function_result(p.oid) END AS returns,
       split_part(coalesce(obj_description(p.oid, 'pg_proc'), ''), E'\n', 1) AS description
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('api', 'ops')
   OR (n.nspname = 'game' AND has_function_privilege('waifu_ops', p.oid, 'EXECUTE')
       AND p.proname IN ('maintain_ledger', 'purge_cron_history', 'purge_rate_limits', 'restore_energy_job',
                         'tick_batch'))
ORDER BY 1, 2, 3;
COMMENT ON VIEW ops.functions IS
    'Every function an operator or the bot calls: schema, name, arguments, result, the first line of its comment (\df+ prints whole bodies).';
GRANT SELECT ON ops.functions TO waifu_ops;
