-- Back to 0010: the tick fills with one UPDATE under its advisory lock, full_at only for
-- waifus below the cap (partial index where regenerating), per-process rate limits only,
-- no expiry of notifications, the daily reward by calendar day alone. Re-adding the
-- generated columns rewrites game.waifus (as 0010 did).

DO $$
BEGIN
    PERFORM cron.unschedule(j.jobid) FROM cron.job AS j WHERE j.jobname IN ('restore-energy', 'purge-rate-limits');
    PERFORM cron.schedule_in_database('restore-energy', '* * * * *', 'SELECT api.restore_energy()',
                                      current_database(), 'waifu_cron');
    PERFORM cron.schedule_in_database('ledger-partitions', '7 0 * * *', 'SELECT game.maintain_ledger()',
                                      current_database(), 'waifu_cron');
END
$$;
ALTER FUNCTION game.maintain_ledger(timestamptz, integer) RESET lock_timeout;

DROP VIEW ops.functions;
DROP VIEW ops.rate_limits;
DROP VIEW ops.tick;
DROP VIEW ops.overview;
DROP VIEW ops.config;
DROP FUNCTION ops.set_rate_limit(text, double precision, integer);
DROP FUNCTION ops.reset_tick(timestamptz);
DROP FUNCTION api.try_polling_lock(bigint);
DROP FUNCTION api.release_polling_lock(bigint);
DROP FUNCTION api.admit_update(bigint, bigint, bigint, bigint);
DROP FUNCTION api.forget_update(bigint, bigint);
DROP FUNCTION api.rate_limit_lease(text, text, integer);
DROP FUNCTION api.rate_limit(text, text);
DROP FUNCTION game.take_token(text, text);
DROP FUNCTION game.take_tokens(text, text, integer);
DROP FUNCTION game.purge_rate_limits();
DROP TABLE game.seen_updates;
DROP TABLE game.rate_buckets;
DROP TABLE game.rate_limits;
DROP PROCEDURE game.restore_energy_job();
DROP FUNCTION game.tick_batch(boolean);
DROP FUNCTION game.record_tick(boolean, timestamptz, timestamptz, integer, integer, integer);
DROP FUNCTION game.restore_batch(timestamptz, integer);
DROP FUNCTION game.expand_rested(timestamptz, integer);
DROP TABLE game.rested_ranges;
DROP TABLE game.tick_state;
DROP FUNCTION ops.set_config(interval, interval, interval, integer);
DROP TABLE game.request_keys;
DROP FUNCTION game.purge_player_history();

-- A waifu left stored below the cap with her full_at passed is filled by 0010's next tick.
DROP INDEX game.waifus_full_at_idx;
ALTER TABLE game.waifus DROP COLUMN full_at;
ALTER TABLE game.waifus
    ADD COLUMN regenerating boolean GENERATED ALWAYS AS ((dynamic ->> 'energy')::integer < game.max_energy()) STORED,
    ADD COLUMN full_at numeric
        GENERATED ALWAYS AS (
            CASE WHEN (dynamic ->> 'energy')::integer < game.max_energy()
                 THEN (dynamic ->> 'last_restore')::numeric
                      + game.energy_regen_seconds() * (game.max_energy() - (dynamic ->> 'energy')::integer)
            END) STORED;
COMMENT ON COLUMN game.waifus.regenerating IS
'Stored energy below the cap (derived from dynamic): true until the tick that fills her.';
COMMENT ON COLUMN game.waifus.full_at IS
'Epoch second at which her stored energy reaches the cap (NULL at the cap). Restoring does not move it; the
tick fills her once it has passed.';
CREATE INDEX waifus_full_at_idx ON game.waifus (full_at) WHERE regenerating;

DROP INDEX game.notifications_player_queue_idx;
UPDATE game.notifications SET outcome = 'failed' WHERE outcome IN ('expired', 'stale');
ALTER TABLE game.notifications DROP CONSTRAINT notifications_outcome_check;
ALTER TABLE game.notifications ADD CONSTRAINT notifications_outcome_check
    CHECK (outcome IN ('sent', 'blocked', 'off', 'failed'));
COMMENT ON COLUMN game.notifications.outcome IS
    'How the row ended (sent_at is then its time): sent, blocked (403: notifications turned off), '
    'off (the player turned them off before it went out), failed (refused for good or too many attempts).';

DROP FUNCTION game.daily_available_at(game.players);
DROP FUNCTION game.daily_hours();
ALTER TABLE game.players DROP COLUMN daily_last_at;
ALTER TABLE game.config DROP COLUMN notification_max_age, DROP COLUMN tick_batch_size;

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace
          AND p.proname ~ '^pg_(try_)?advisory_(xact_)?lock(_shared)?$'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
    END LOOP;
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I RESET lock_timeout', current_database());
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I RESET idle_in_transaction_session_timeout', current_database());
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I RESET statement_timeout', current_database());
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I RESET log_error_verbosity', current_database());
    EXECUTE format('ALTER ROLE waifu_bot IN DATABASE %I RESET log_min_error_statement', current_database());
    EXECUTE format('ALTER ROLE waifu_cron IN DATABASE %I RESET lock_timeout', current_database());
END
$$;

-- The definitions as 0010 left them.

CREATE OR REPLACE FUNCTION game.invalid_argument(argument text, message text, detail jsonb) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION '%', invalid_argument.message
        USING ERRCODE = 'WF006',
              DETAIL = (jsonb_build_object('argument', invalid_argument.argument)
                        || coalesce(invalid_argument.detail, '{}'))::text;
END
$$;

COMMENT ON FUNCTION game.invalid_argument(argument text, message text, detail jsonb) IS 'Raises WF006 naming the argument, DETAIL {argument} || detail (the one way every function refuses an argument).';

CREATE OR REPLACE FUNCTION ops.close_event(code text, at timestamp with time zone DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
        RAISE EXCEPTION 'event "%" does not exist', close_event.code
            USING ERRCODE = 'WF002', DETAIL = jsonb_build_object('event_code', close_event.code)::text;
    END IF;
    RETURN to_jsonb(e);
END
$$;

COMMENT ON FUNCTION ops.close_event(code text, at timestamp with time zone) IS 'Close an event from `at` on (default now): players no longer see it. The ledger keeps its history.
Reopen with ops.create_event. Errors: WF002 no such event; WF006 at NULL or infinite.';

CREATE OR REPLACE FUNCTION api.restore_energy(now timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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

COMMENT ON FUNCTION api.restore_energy(now timestamp with time zone) IS 'Fill every waifu whose energy has reached the cap by now (stores her restored stats); returns how many.
A waifu still below the cap is not written: her energy is computed from her clock at every read.
The waifus it fills get one "she is rested" notification per player (game.notifications, if the
player has them on), then NOTIFY waifu_notifications. pg_cron runs it every minute (job restore-energy).
Idempotent for the same now; catches up exactly after an outage. Reads never depend on it.';

CREATE OR REPLACE FUNCTION api.claim_notifications(worker text, batch_size integer, lease_seconds integer, now timestamp with time zone DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    at timestamptz := game.checked_now(claim_notifications.now);
    max_attempts constant integer := 10;
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

    WITH picked AS (
        SELECT n.id, pl.notifications AS wanted, n.attempts
        FROM game.notifications AS n
        JOIN game.players AS pl ON pl.telegram_id = n.telegram_id
        WHERE n.sent_at IS NULL AND n.available_at <= at
        ORDER BY n.id
        LIMIT claim_notifications.batch_size
        FOR UPDATE OF n SKIP LOCKED
    ), claimed_rows AS (
        UPDATE game.notifications AS n
        SET claimed_by = claim_notifications.worker,
            attempts = n.attempts + 1,
            available_at = at + make_interval(secs => claim_notifications.lease_seconds),
            sent_at = CASE WHEN NOT picked.wanted OR picked.attempts >= max_attempts THEN at END,
            outcome = CASE WHEN NOT picked.wanted THEN 'off' WHEN picked.attempts >= max_attempts THEN 'failed' END
        FROM picked
        WHERE n.id = picked.id
        RETURNING n.*
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', c.id, 'telegram_id', c.telegram_id, 'kind', c.kind, 'payload', c.payload,
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

COMMENT ON FUNCTION api.claim_notifications(worker text, batch_size integer, lease_seconds integer, now timestamp with time zone) IS 'Claim up to batch_size due notifications for this sender (worker: any name unique per process).
Each is leased for lease_seconds: not finished by then (the sender died), it is claimed again.
Rows of players who turned notifications off end as ''off'', rows claimed 10 times end as ''failed'';
neither is returned. Concurrent senders never get the same row (FOR UPDATE SKIP LOCKED).
Returns [{id, telegram_id, kind, payload, created_at, attempts, lease_until, language, language_code}]
ordered by player. Errors: WF006 worker missing, batch_size not 1..1000, lease_seconds not 1..3600,
or a `now` this caller may not choose.';

CREATE OR REPLACE FUNCTION game.daily_status(p game.players, at timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    today date := game.local_day(daily_status.p.timezone, daily_status.at);
    last date := daily_status.p.daily_last;
    available boolean := last IS NULL OR today > last;
    -- The streak the next claim makes: it goes on from a claim yesterday (or today, for
    -- tomorrow's claim) and starts again at 1 after a missed day.
    next_streak integer := CASE WHEN last >= today - 1 THEN daily_status.p.daily_streak + 1 ELSE 1 END;
    reward game.daily_rewards := game.daily_reward(next_streak);
BEGIN
    RETURN jsonb_build_object(
        'available', available,
        'available_at', CASE WHEN available THEN NULL ELSE game.day_start(daily_status.p.timezone, last + 1) END,
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
    streak integer;
    reward game.daily_rewards;
    waifus jsonb;
    result jsonb;
BEGIN
    PERFORM game.check_id('telegram_id', claim_daily.telegram_id);
    PERFORM game.check_request_key(claim_daily.request_key, true);
    -- Not during a restore tick: the tick locks the waifus it restores in its own order,
    -- and a claim locking several waifus of one player could deadlock with it. A claim
    -- waits for a running tick (its duration, well under a second at 1M waifus) and a
    -- tick for the claims in progress (milliseconds).
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('waifu:api.restore_energy', 0));
    -- The player's row is the lock: two claims of one player run one after the other,
    -- and the second sees the first's day (or its request key).
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
    IF p.daily_last >= today THEN
        RAISE EXCEPTION 'the daily reward was already claimed on %', p.daily_last
            USING ERRCODE = 'WF008',
                  DETAIL = jsonb_build_object('limit', 'daily', 'available_at', game.day_start(p.timezone, p.daily_last + 1),
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

    result := jsonb_build_object(
        'telegram_id', p.telegram_id,
        'day', today,
        'streak', streak,
        'reward', jsonb_build_object('energy', reward.energy, 'xp', reward.xp, 'mood', reward.mood,
                                     'loyalty', reward.loyalty),
        'waifus', waifus,
        'claimed_at', at,
        'next_at', game.day_start(p.timezone, today + 1),
        'request_key', claim_daily.request_key,
        'replayed', false);
    INSERT INTO game.daily_claims (telegram_id, day, request_key, claimed_at, streak, result)
    VALUES (p.telegram_id, today, claim_daily.request_key, at, streak, result);
    UPDATE game.players AS x SET daily_streak = streak, daily_last = today WHERE x.telegram_id = p.telegram_id;
    RETURN result;
END
$$;

COMMENT ON FUNCTION api.claim_daily(telegram_id bigint, request_key text, now timestamp with time zone) IS 'Claim today''s daily reward: every waifu of the player gets the reward of the streak''s day
(game.daily_rewards: energy up to the cap, XP, mood and loyalty up to the cap).
The day is the player''s calendar day (UTC unless they set a timezone). The streak goes on after
a claim yesterday and starts again at 1 after a missed day.
request_key: the same key again returns the recorded result ("replayed": true), any day.
Returns {telegram_id, day, streak, reward: {energy, xp, mood, loyalty}, waifus: [api.waifu_stats
shape + gained: {energy, xp, mood, loyalty}], claimed_at, next_at, request_key, replayed}.
Errors: WF004 the player has no waifu; WF005 not registered; WF006 missing/too long request_key or
a `now` this caller may not choose; WF008 already claimed this day {limit: "daily", available_at,
day, streak, timezone}.';

COMMENT ON FUNCTION api.set_player_setting(telegram_id bigint, name text, value text, now timestamp with time zone) IS 'Change one setting; returns the settings (api.player_settings shape).
name: notifications (value on|off), language (auto|en|ru), timezone (an IANA name such as
Europe/Moscow, any case, or UTC). Changing the timezone moves the day boundary of the daily
reward but never allows a claim on a calendar day not after the last claimed one.
Errors: WF005 not registered; WF006 unknown name or value, or a `now` this caller may not choose.';

CREATE FUNCTION game.purge_player_history(now timestamp with time zone DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    notifications integer;
    claims integer;
BEGIN
    -- Finished rows are kept for the operator (what went out, what was blocked) for
    -- game.config.notification_retention (ops.set_config).
    DELETE FROM game.notifications AS n
    WHERE n.sent_at < purge_player_history.now - (SELECT c.notification_retention FROM game.config AS c);
    GET DIAGNOSTICS notifications = ROW_COUNT;
    -- A claim is needed only to answer a retried request key, and streaks live in players.
    DELETE FROM game.daily_claims AS c WHERE c.claimed_at < purge_player_history.now - interval '90 days';
    GET DIAGNOSTICS claims = ROW_COUNT;
    RETURN jsonb_build_object('notifications', notifications, 'daily_claims', claims);
END
$$;

COMMENT ON FUNCTION game.purge_player_history(now timestamp with time zone) IS 'Delete finished notifications older than game.config.notification_retention (default 7 days) and
daily claims older than 90 days.
Run by pg_cron (job purge-player-history, hourly, as waifu_cron).
Returns {notifications, daily_claims}: rows deleted.';

REVOKE ALL ON FUNCTION game.purge_player_history(now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION game.purge_player_history(now timestamp with time zone) TO waifu_cron;

CREATE FUNCTION ops.set_config(ledger_retention interval DEFAULT NULL::interval, notification_retention interval DEFAULT NULL::interval) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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
    UPDATE game.config AS g
    SET ledger_retention = coalesce(set_config.ledger_retention, g.ledger_retention),
        notification_retention = coalesce(set_config.notification_retention, g.notification_retention)
    RETURNING g.* INTO c;
    RETURN to_jsonb(c) - 'singleton';
END
$$;

COMMENT ON FUNCTION ops.set_config(ledger_retention interval, notification_retention interval) IS 'Change game settings; a NULL argument keeps the current value. Returns every setting.
ledger_retention (7 days..10 years, default 30 days): ledger partitions wholly older are dropped by the
daily job ledger-partitions. notification_retention (1 hour..1 year, default 7 days): sent notifications
are purged after it.
Example: SELECT ops.set_config(ledger_retention => ''90 days'');
Errors: WF006 out of range.';

REVOKE ALL ON FUNCTION ops.set_config(ledger_retention interval, notification_retention interval) FROM PUBLIC;
GRANT ALL ON FUNCTION ops.set_config(ledger_retention interval, notification_retention interval) TO waifu_ops;

CREATE VIEW ops.config AS
 SELECT config.ledger_retention,
    config.notification_retention
   FROM game.config;

COMMENT ON VIEW ops.config IS 'Game settings (change with ops.set_config).';

GRANT SELECT ON TABLE ops.config TO waifu_ops;

CREATE VIEW ops.overview AS
 SELECT ( SELECT count(*) AS count
           FROM game.players) AS players,
    ( SELECT count(*) AS count
           FROM game.waifus) AS waifus,
    ( SELECT count(*) AS count
           FROM game.waifus w
          WHERE w.regenerating) AS waifus_below_max_energy,
    ( SELECT count(*) AS count
           FROM game.participations p
          WHERE (p.participated_at > (now() - '24:00:00'::interval))) AS participations_24h,
    ( SELECT count(*) AS count
           FROM game.events e
          WHERE game.event_is_open(e.*, now())) AS open_events;

COMMENT ON VIEW ops.overview IS 'One-row summary: players, waifus, how many regenerate, activity in 24 h.';

GRANT SELECT ON TABLE ops.overview TO waifu_ops;

CREATE OR REPLACE FUNCTION api.participate_in_event(telegram_id bigint, waifu_id bigint, event_code text, request_key text, now timestamp with time zone DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
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

