-- Players: their settings, a daily reward with a streak, and the outbox API the bot's
-- notification sender calls (claim with a lease, finish), with a purge job.
--
-- Errors (SQLSTATE; DETAIL is a JSON object):
--   WF004 no waifu to reward          WF005 player not registered
--   WF006 invalid argument (unknown setting or value, bad key, a `now` the caller may not choose)
--   WF008 limit reached: the daily reward was already claimed today {available_at, ...}
-- depends: 0006.hardening-and-scale

-- The outcome of a finished notification. 0006's outbox marks a row done with sent_at;
-- a row may also end unsent (the player blocked the bot, turned notifications off, or
-- Telegram refused it for good), and the purge and the operator need to tell which.
ALTER TABLE game.notifications
    ADD COLUMN outcome text CHECK (outcome IN ('sent', 'blocked', 'off', 'failed'));
COMMENT ON COLUMN game.notifications.outcome IS
    'How the row ended (sent_at is then its time): sent, blocked (403: notifications turned off), '
    'off (the player turned them off before it went out), failed (refused for good or too many attempts).';

-- The senders take the oldest waiting rows first, by id: a row given back (a 429's
-- retry_after) or left by a dead sender (its lease over) keeps its place at the front
-- instead of joining the back of the queue, as ordering by available_at (0006's index)
-- would make it. That index served only the claim: replaced, so the tick still writes
-- two index entries per notification, not three.
CREATE INDEX notifications_queue_idx ON game.notifications (id) WHERE sent_at IS NULL;
DROP INDEX game.notifications_pending_idx;

-- Settings ------------------------------------------------------------------------------

-- The player's calendar day: the daily reward follows it (UTC unless they set a timezone).
CREATE FUNCTION game.local_day(timezone text, at timestamptz) RETURNS date
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN (at AT TIME ZONE coalesce(timezone, 'UTC'))::date;
COMMENT ON FUNCTION game.local_day(text, timestamptz) IS 'The calendar day at `at` in a timezone (NULL = UTC).';

CREATE FUNCTION game.day_start(timezone text, day date) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN day::timestamp AT TIME ZONE coalesce(timezone, 'UTC');
COMMENT ON FUNCTION game.day_start(text, date) IS 'The moment a calendar day starts in a timezone (NULL = UTC).';

-- The reward for each day of a streak; a streak longer than the last row gets the last
-- row (the cap). Day 1 must exist.
CREATE TABLE game.daily_rewards (
    day     integer PRIMARY KEY CHECK (day >= 1),
    energy  integer NOT NULL CHECK (energy BETWEEN 0 AND game.max_energy()),
    xp      integer NOT NULL CHECK (xp >= 0),
    mood    integer NOT NULL CHECK (mood BETWEEN 0 AND game.max_stat()),
    loyalty integer NOT NULL CHECK (loyalty BETWEEN 0 AND game.max_stat())
);
COMMENT ON TABLE game.daily_rewards IS
    'Daily reward by day of the streak (1 = first day); days past the last row get the last row.';
INSERT INTO game.daily_rewards (day, energy, xp, mood, loyalty) VALUES
    (1, 20, 10, 2, 1),
    (2, 30, 20, 3, 2),
    (3, 40, 30, 4, 3),
    (4, 50, 45, 5, 4),
    (5, 60, 60, 6, 5),
    (6, 80, 80, 8, 6),
    (7, 100, 120, 10, 8);

CREATE FUNCTION game.daily_reward(streak integer) RETURNS game.daily_rewards
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT r.* FROM game.daily_rewards AS r WHERE r.day <= greatest(streak, 1) ORDER BY r.day DESC LIMIT 1;
END;
COMMENT ON FUNCTION game.daily_reward(integer) IS 'The reward row for a day of the streak (capped at the last row).';

-- One row per claim: the result is recorded so that the same request key answers the
-- same result (a double tap, a redelivered update). Keyed by the player's day, which
-- only ever grows (a claim needs a day after the last one), so the key never collides.
CREATE TABLE game.daily_claims (
    telegram_id bigint NOT NULL REFERENCES game.players ON DELETE CASCADE,
    day         date NOT NULL,
    request_key text NOT NULL,
    claimed_at  timestamptz NOT NULL,
    streak      integer NOT NULL CHECK (streak >= 1),
    result      jsonb NOT NULL,
    PRIMARY KEY (telegram_id, day),
    CONSTRAINT daily_claims_request_once UNIQUE (telegram_id, request_key)
);
COMMENT ON TABLE game.daily_claims IS 'Daily rewards claimed, with the result returned (kept 90 days).';

-- Where the daily reward stands for a player at `at`: what the menu shows.
CREATE FUNCTION game.daily_status(p game.players, at timestamptz) RETURNS jsonb
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
COMMENT ON FUNCTION game.daily_status(game.players, timestamptz) IS
    'Daily reward state {available, available_at, streak, last_day, next_streak, next_reward}.';

CREATE FUNCTION game.settings_json(p game.players, at timestamptz) RETURNS jsonb
    LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'telegram_id', p.telegram_id,
    'notifications', p.notifications,
    'language', p.language,
    'language_code', p.language_code,
    'timezone', coalesce(p.timezone, 'UTC'),
    'daily', game.daily_status(p, at),
    'as_of', at);
COMMENT ON FUNCTION game.settings_json(game.players, timestamptz) IS 'The shape api.player_settings returns.';

-- api.player_settings ------------------------------------------------------------------
CREATE FUNCTION api.player_settings(telegram_id bigint, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(player_settings.now);
BEGIN
    RETURN game.settings_json(game.require_player(player_settings.telegram_id), at);
END
$$;
REVOKE ALL ON FUNCTION api.player_settings(bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.player_settings(bigint, timestamptz) TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.player_settings(bigint, timestamptz) IS
$$A player's settings and where their daily reward stands.
Returns {telegram_id, notifications, language (auto|en|ru), language_code (Telegram's), timezone
(IANA name, 'UTC' by default), daily: {available, available_at (null when available), streak (0 after
a missed day), last_day, next_streak, next_reward: {energy, xp, mood, loyalty}}, as_of}.
Errors: WF005 not registered; WF006 a `now` this caller may not choose.$$;

-- api.set_player_setting ---------------------------------------------------------------
CREATE FUNCTION api.set_player_setting(telegram_id bigint, name text, value text, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(set_player_setting.now);
    p game.players;
    zone text;
BEGIN
    PERFORM game.require_player(set_player_setting.telegram_id);
    PERFORM game.check_text('value', set_player_setting.value, 64, true);
    CASE set_player_setting.name
    WHEN 'notifications' THEN
        IF set_player_setting.value NOT IN ('on', 'off') THEN
            PERFORM game.invalid_argument('value', set_player_setting.value, 'notifications must be on or off');
        END IF;
        UPDATE game.players AS x SET notifications = (set_player_setting.value = 'on'), updated_at = at
        WHERE x.telegram_id = set_player_setting.telegram_id
        RETURNING x.* INTO p;
    WHEN 'language' THEN
        IF set_player_setting.value NOT IN ('auto', 'en', 'ru') THEN
            PERFORM game.invalid_argument('value', set_player_setting.value, 'language must be auto, en or ru');
        END IF;
        UPDATE game.players AS x SET language = set_player_setting.value, updated_at = at
        WHERE x.telegram_id = set_player_setting.telegram_id
        RETURNING x.* INTO p;
    WHEN 'timezone' THEN
        -- The canonical spelling of an IANA name ('europe/moscow' -> 'Europe/Moscow');
        -- the posix/ and right/ copies and POSIX strings such as 'UTC+3' (sign inverted)
        -- are refused. UTC is stored as NULL, the default.
        IF upper(set_player_setting.value) <> 'UTC' THEN
            SELECT z.name INTO zone FROM pg_catalog.pg_timezone_names AS z
            WHERE lower(z.name) = lower(set_player_setting.value) AND z.name !~ '^(posix|right)/'
            ORDER BY z.name = set_player_setting.value DESC, z.name LIMIT 1;
            IF zone IS NULL THEN
                PERFORM game.invalid_argument('value', set_player_setting.value,
                    'timezone must be an IANA name such as Europe/Moscow, or UTC');
            END IF;
        END IF;
        UPDATE game.players AS x SET timezone = zone, updated_at = at
        WHERE x.telegram_id = set_player_setting.telegram_id
        RETURNING x.* INTO p;
    ELSE
        PERFORM game.invalid_argument('name', set_player_setting.name,
            'unknown setting: expected notifications, language or timezone');
    END CASE;
    RETURN game.settings_json(p, at);
END
$$;
REVOKE ALL ON FUNCTION api.set_player_setting(bigint, text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.set_player_setting(bigint, text, text, timestamptz) TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.set_player_setting(bigint, text, text, timestamptz) IS
$$Change one setting; returns the settings (api.player_settings shape).
name: notifications (value on|off), language (auto|en|ru), timezone (an IANA name such as
Europe/Moscow, any case, or UTC). Changing the timezone moves the day boundary of the daily
reward but never allows a claim on a calendar day not after the last claimed one.
Errors: WF005 not registered; WF006 unknown name or value, or a `now` this caller may not choose.$$;

-- Daily reward --------------------------------------------------------------------------

-- A reward applied to stats already regenerated to the claim's moment: energy up to the
-- cap, XP added, mood and loyalty clamped. The energy clock is kept: a waifu still below
-- the cap keeps her progress towards the next point; at the cap the clock no longer counts.
CREATE FUNCTION game.apply_daily(dynamic jsonb, r game.daily_rewards) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_set(jsonb_set(jsonb_set(jsonb_set(dynamic,
    '{energy}', to_jsonb(least(game.max_energy(), (dynamic ->> 'energy')::integer + r.energy))),
    '{xp}', to_jsonb((dynamic ->> 'xp')::bigint + r.xp)),
    '{mood}', to_jsonb(least(game.max_stat(), (dynamic ->> 'mood')::integer + r.mood))),
    '{loyalty}', to_jsonb(least(game.max_stat(), (dynamic ->> 'loyalty')::integer + r.loyalty)));
COMMENT ON FUNCTION game.apply_daily(jsonb, game.daily_rewards) IS
    'Stats after a daily reward (input must be regenerated to the claim''s moment).';

-- api.claim_daily ----------------------------------------------------------------------
CREATE FUNCTION api.claim_daily(telegram_id bigint, request_key text, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
REVOKE ALL ON FUNCTION api.claim_daily(bigint, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.claim_daily(bigint, text, timestamptz) TO waifu_bot;
COMMENT ON FUNCTION api.claim_daily(bigint, text, timestamptz) IS
$$Claim today's daily reward: every waifu of the player gets the reward of the streak's day
(game.daily_rewards: energy up to the cap, XP, mood and loyalty up to the cap).
The day is the player's calendar day (UTC unless they set a timezone). The streak goes on after
a claim yesterday and starts again at 1 after a missed day.
request_key: the same key again returns the recorded result ("replayed": true), any day.
Returns {telegram_id, day, streak, reward: {energy, xp, mood, loyalty}, waifus: [api.waifu_stats
shape + gained: {energy, xp, mood, loyalty}], claimed_at, next_at, request_key, replayed}.
Errors: WF004 the player has no waifu; WF005 not registered; WF006 missing/too long request_key or
a `now` this caller may not choose; WF008 already claimed this day {limit: "daily", available_at,
day, streak, timezone}.$$;

-- Outbox: what the bot's sender calls -------------------------------------------------

-- Claim a batch: rows due now, oldest first (by id), locked with SKIP LOCKED (senders never wait
-- for each other) and leased: available_at moves to now + lease, so a row whose sender
-- died is claimed again once the lease is over. Rows of players who turned
-- notifications off meanwhile end here ('off'); a row claimed too often ends 'failed'.
CREATE FUNCTION api.claim_notifications(worker text, batch_size integer, lease_seconds integer,
                                        now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
REVOKE ALL ON FUNCTION api.claim_notifications(text, integer, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.claim_notifications(text, integer, integer, timestamptz) TO waifu_bot;
COMMENT ON FUNCTION api.claim_notifications(text, integer, integer, timestamptz) IS
$$Claim up to batch_size due notifications for this sender (worker: any name unique per process).
Each is leased for lease_seconds: not finished by then (the sender died), it is claimed again.
Rows of players who turned notifications off end as 'off', rows claimed 10 times end as 'failed';
neither is returned. Concurrent senders never get the same row (FOR UPDATE SKIP LOCKED).
Returns [{id, telegram_id, kind, payload, created_at, attempts, lease_until, language, language_code}]
ordered by player. Errors: WF006 worker missing, batch_size not 1..1000, lease_seconds not 1..3600,
or a `now` this caller may not choose.$$;

CREATE FUNCTION api.finish_notifications(worker text, ids bigint[], outcome text,
                                         retry_after_seconds integer DEFAULT NULL, now timestamptz DEFAULT now())
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(finish_notifications.now);
    changed integer;
BEGIN
    PERFORM game.check_text('worker', finish_notifications.worker, 64, true);
    IF finish_notifications.ids IS NULL OR cardinality(finish_notifications.ids) > 1000 THEN
        PERFORM game.invalid_argument('ids', left(finish_notifications.ids::text, 100), 'ids must be 0..1000 ids');
    END IF;
    CASE finish_notifications.outcome
    WHEN 'sent', 'failed' THEN
        -- Whoever holds the lease now: the message went out (or never will), so nobody
        -- may send it again.
        UPDATE game.notifications AS n SET sent_at = at, outcome = finish_notifications.outcome
        WHERE n.id = ANY (finish_notifications.ids) AND n.sent_at IS NULL;
    WHEN 'retry' THEN
        IF finish_notifications.retry_after_seconds IS NULL
           OR finish_notifications.retry_after_seconds NOT BETWEEN 0 AND 86400 THEN
            PERFORM game.invalid_argument('retry_after_seconds', finish_notifications.retry_after_seconds::text,
                                          'retry_after_seconds must be between 0 and 86400');
        END IF;
        -- Only the current holder gives a row back (after its lease, another sender may hold it).
        UPDATE game.notifications AS n
        SET available_at = at + make_interval(secs => finish_notifications.retry_after_seconds), claimed_by = NULL
        WHERE n.id = ANY (finish_notifications.ids) AND n.sent_at IS NULL
          AND n.claimed_by = finish_notifications.worker;
    WHEN 'blocked' THEN
        -- The player blocked the bot: retrying never helps. Their notifications go off
        -- and every row of theirs still waiting ends with this one.
        WITH blocked AS (
            UPDATE game.players AS pl SET notifications = false, updated_at = at
            WHERE pl.telegram_id IN (SELECT n.telegram_id FROM game.notifications AS n
                                     WHERE n.id = ANY (finish_notifications.ids))
            RETURNING pl.telegram_id
        )
        UPDATE game.notifications AS n SET sent_at = at, outcome = 'blocked'
        FROM blocked
        WHERE n.telegram_id = blocked.telegram_id AND n.sent_at IS NULL;
    ELSE
        PERFORM game.invalid_argument('outcome', finish_notifications.outcome,
                                      'outcome must be sent, retry, blocked or failed');
    END CASE;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION api.finish_notifications(text, bigint[], text, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.finish_notifications(text, bigint[], text, integer, timestamptz) TO waifu_bot;
COMMENT ON FUNCTION api.finish_notifications(text, bigint[], text, integer, timestamptz) IS
$$Finish claimed notifications; returns how many rows changed.
outcome: sent (Telegram accepted the message; applies whoever holds the row now), failed (refused
for good), retry (give the rows back, due again after retry_after_seconds 0..86400: a 429's
retry_after, or 0 on shutdown; only the worker holding them may), blocked (403: the player's
notifications are turned off and all their waiting rows end).
Errors: WF006 unknown outcome, worker missing, more than 1000 ids, bad retry_after_seconds, or a
`now` this caller may not choose.$$;

-- Purge ---------------------------------------------------------------------------------

CREATE FUNCTION game.purge_player_history(now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
REVOKE ALL ON FUNCTION game.purge_player_history(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.purge_player_history(timestamptz) TO waifu_cron;
COMMENT ON FUNCTION game.purge_player_history(timestamptz) IS
$$Delete finished notifications older than game.config.notification_retention (default 7 days) and
daily claims older than 90 days.
Run by pg_cron (job purge-player-history, hourly, as waifu_cron).
Returns {notifications, daily_claims}: rows deleted.$$;

-- As 0006 schedules its jobs: run as waifu_cron; a named job is unique per (name, role),
-- so an earlier one is removed first.
DO $$
BEGIN
    PERFORM cron.unschedule(j.jobid) FROM cron.job AS j WHERE j.jobname = 'purge-player-history';
    PERFORM cron.schedule_in_database('purge-player-history', '23 * * * *', 'SELECT game.purge_player_history()',
                                      current_database(), 'waifu_cron');
END
$$;
