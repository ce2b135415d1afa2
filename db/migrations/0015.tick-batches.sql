-- The tick's batches, for the 10M burst and so that nobody stalls its messages (issue 22):
--
-- * game.tick_horizon: the cursor stops at the oldest transaction that may still write a
--   waifu, no longer at the oldest open one. A transaction that has written nothing (no
--   transaction id) and began over 6 minutes ago cannot: the game's functions refuse a
--   transaction time over 5 minutes old (game.checked_now). Before, an operator's psql left
--   in BEGIN held back every "she is rested" until it ended.
-- * The job's batches commit without waiting for the disk (synchronous_commit off, for those
--   transactions only): each writes only its cursor and a staged range, which the next tick
--   makes again if a crash loses them. At 10M a burst of 500,000 is 500 commits.
-- * game.tick_state.last_longest_transaction_ms (and in ops.tick): the longest batch of the
--   last run, the time the tick held its locks at most (issue 22: <= 100 ms).
-- depends: 0014.game-extras

-- SECURITY DEFINER: pg_stat_activity shows other roles' transactions only to the owner's
-- kind, and an operator asking where the tick stops must see what the tick sees.
CREATE FUNCTION game.tick_horizon(idle_limit interval DEFAULT interval '6 minutes') RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT least(min(a.xact_start), clock_timestamp())
    FROM pg_catalog.pg_stat_activity AS a
    WHERE a.datname = current_database() AND a.backend_type = 'client backend'
      AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL
      -- One that wrote nothing yet and is older than idle_limit cannot write a waifu any more.
      AND (a.backend_xid IS NOT NULL OR a.xact_start > clock_timestamp() - tick_horizon.idle_limit);
END;
COMMENT ON FUNCTION game.tick_horizon(interval) IS
$$How far the restore tick's cursor may go (epoch of the result): the start of the oldest transaction in this
database that may still write a waifu, or the real time. Not counted: one that has written nothing and began
over idle_limit ago (default 6 minutes; game.checked_now refuses a transaction time over 5 minutes old).$$;
REVOKE ALL ON FUNCTION game.tick_horizon(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.tick_horizon(interval) TO waifu_ops;

ALTER TABLE game.tick_state ADD COLUMN last_longest_transaction_ms double precision;
COMMENT ON COLUMN game.tick_state.last_longest_transaction_ms IS
    'Longest batch (one transaction) of the last tick run, in ms: the longest it held its locks.';

CREATE OR REPLACE FUNCTION game.restore_batch(at timestamptz, batch_size integer,
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
    -- start: the cursor never passes the oldest one that may still write (game.tick_horizon).
    horizon := extract(epoch FROM game.tick_horizon());
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

CREATE OR REPLACE FUNCTION game.record_tick(first boolean, at timestamptz, started timestamptz, batches integer,
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
        notified_total = s.notified_total + record_tick.notified,
        -- The batch's own span (a run of api.restore_energy: the whole run, one transaction).
        last_longest_transaction_ms = greatest(
            CASE WHEN record_tick.first THEN 0 ELSE s.last_longest_transaction_ms END,
            extract(epoch FROM clock_timestamp() - record_tick.started) * 1000);
END;

CREATE OR REPLACE PROCEDURE game.restore_energy_job()
    LANGUAGE plpgsql
AS $$
DECLARE
    first pg_catalog.bool := true;
    deadline pg_catalog.timestamptz := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => 50);
    more pg_catalog.bool;
BEGIN
    LOOP
        -- A batch writes only what the tick can make again: its cursor and a staged range.
        -- Its commit need not wait for the disk; a crash loses at most the last few
        -- batches, and the next tick finds the same waifus. Whoever uses a range (the
        -- sender's claim) commits after it, which flushes the WAL up to the range too.
        PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
        more := game.tick_batch(first);
        COMMIT;
        -- Stop before the next minute's run is due; it goes on from the cursor.
        EXIT WHEN NOT more OR pg_catalog.clock_timestamp() >= deadline;
        first := false;
    END LOOP;
END
$$;

CREATE OR REPLACE VIEW ops.tick AS
SELECT s.last_now, s.last_started_at, s.last_finished_at, s.last_duration_ms, s.last_batches, s.last_filled,
       s.last_notified, s.runs, s.filled_total, s.notified_total,
       to_timestamp(s.cursor_full_at::double precision) AS cursor_at,
       (SELECT coalesce(sum(r.waifus), 0) FROM game.rested_ranges AS r) AS rested_staged,
       (SELECT count(*) FROM game.waifus AS w
        WHERE w.full_at > s.cursor_full_at AND w.full_at <= extract(epoch FROM now())
          AND (w.dynamic ->> 'energy')::integer < game.max_energy()) AS due_now,
       s.last_longest_transaction_ms
FROM game.tick_state AS s;
