-- Hardening, one rule in one place, and the core at scale.
--
-- * Every SECURITY DEFINER function pins `search_path = pg_catalog, pg_temp`: with an
--   empty search_path PostgreSQL still looks in the caller's pg_temp first for types and
--   relations, so a caller's `pg_temp.jsonb` domain ran code as the owner. PUBLIC loses
--   TEMPORARY on the database and CREATE on schema public.
-- * The clock belongs to the server (game.checked_now), NULL ids are refused first, a
--   player adopts each template once (WF008), request keys and texts are checked once.
-- * pg_cron jobs run as waifu_cron, which may call only the job functions.
-- * The restore tick is heap-only: the only index it could touch is a partial index on
--   `regenerating`, which a regenerating waifu keeps until she is full. The ledger is
--   compact, partitioned by week and dropped whole past its retention; cooldowns live
--   on the waifu (last_played), not in the ledger.
-- * The tick queues a "she is rested" notification (outbox) for every waifu it fills.
--
-- Every api/ops function is declared again here in full: this file (and db/schema.sql)
-- holds their current definitions.
--
-- Errors (SQLSTATE; DETAIL is a JSON object):
--   WF001 not enough energy      WF002 event unknown or not open now
--   WF003 event on cooldown      WF004 waifu not found or not this player's
--   WF005 player not registered  WF006 invalid argument (also: a `now` the caller may not choose)
--   WF007 request key already used for a different action
--   WF008 limit reached (a template already adopted)
-- depends: 0005.cron-jobs

-- Privileges on the database ------------------------------------------------------------
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_cron') THEN
        -- LOGIN only because PostgreSQL 15 checks it for background workers too; no
        -- password, so it cannot log in where passwords are required.
        CREATE ROLE waifu_cron LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_clock') THEN
        CREATE ROLE waifu_clock NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE waifu_cron IS 'Runs the pg_cron jobs (background workers): EXECUTE on the job functions only.';
COMMENT ON ROLE waifu_clock IS 'Members may pass an explicit `now` to api functions (tests, replays). Not for the bot.';
COMMENT ON ROLE waifu_bot IS 'The Telegram bot: EXECUTE on the api functions it calls, nothing else.';
GRANT USAGE ON SCHEMA api, game TO waifu_cron;

-- Constants -------------------------------------------------------------------------------
CREATE FUNCTION game.start_mood() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 50;
COMMENT ON FUNCTION game.start_mood() IS 'Mood of a newly adopted waifu.';

CREATE FUNCTION game.start_loyalty() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 50;
COMMENT ON FUNCTION game.start_loyalty() IS 'Loyalty of a newly adopted waifu.';

CREATE FUNCTION game.templates_per_player() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 1;
COMMENT ON FUNCTION game.templates_per_player() IS 'How many waifus of one template a player may adopt.';

CREATE OR REPLACE FUNCTION game.new_dynamic(at timestamptz) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object('xp', 0, 'energy', game.max_energy(), 'mood', game.start_mood(),
                          'loyalty', game.start_loyalty(), 'last_restore', extract(epoch FROM at));

-- Operator-tunable settings: one row.
CREATE TABLE game.config (
    singleton              boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    ledger_retention       interval NOT NULL DEFAULT '30 days' CHECK (ledger_retention >= interval '7 days'),
    notification_retention interval NOT NULL DEFAULT '7 days' CHECK (notification_retention >= interval '1 hour')
);
COMMENT ON TABLE game.config IS 'Game settings kept in the database (one row). Change with ops.set_config.';
INSERT INTO game.config DEFAULT VALUES;

-- Argument checks: one helper per check, WF006 raised in one place -------------------------
-- The one place WF006 is raised; DETAIL = {"argument": ...} plus what the caller adds.
CREATE FUNCTION game.invalid_argument(argument text, message text, detail jsonb) RETURNS void
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RAISE EXCEPTION '%', invalid_argument.message
        USING ERRCODE = 'WF006',
              DETAIL = (jsonb_build_object('argument', invalid_argument.argument)
                        || coalesce(invalid_argument.detail, '{}'))::text;
END
$$;
COMMENT ON FUNCTION game.invalid_argument(text, text, jsonb) IS
    'Raises WF006 naming the argument, DETAIL {argument} || detail (the one way every function refuses an argument).';

CREATE OR REPLACE FUNCTION game.invalid_argument(argument text, value text, message text) RETURNS void
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM game.invalid_argument(invalid_argument.argument, invalid_argument.message,
                                  jsonb_build_object('value', left(invalid_argument.value, 200)));
END
$$;
COMMENT ON FUNCTION game.invalid_argument(text, text, text) IS
    'Raises WF006 with DETAIL {argument, value} (value as text, cut to 200 characters).';

CREATE OR REPLACE FUNCTION game.check_text(name text, value text, max_length integer, required boolean)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF check_text.value IS NULL THEN
        IF check_text.required THEN
            PERFORM game.invalid_argument(check_text.name, format('%s is required', check_text.name), '{}'::jsonb);
        END IF;
    ELSIF btrim(check_text.value) = '' THEN
        PERFORM game.invalid_argument(check_text.name, format('%s must not be blank', check_text.name), '{}'::jsonb);
    ELSIF length(check_text.value) > check_text.max_length THEN
        PERFORM game.invalid_argument(check_text.name,
            format('%s is longer than %s characters', check_text.name, check_text.max_length),
            jsonb_build_object('max_length', check_text.max_length, 'length', length(check_text.value)));
    END IF;
END
$$;
COMMENT ON FUNCTION game.check_text(text, text, integer, boolean) IS
    'Raises WF006 for a missing (when required), blank or too long text argument.';

CREATE FUNCTION game.check_request_key(value text, required boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM game.check_text('request_key', check_request_key.value, 128, check_request_key.required);
    IF check_request_key.value ~ '[[:cntrl:]]' THEN
        PERFORM game.invalid_argument('request_key', 'request_key must not contain control characters', '{}'::jsonb);
    END IF;
END
$$;
COMMENT ON FUNCTION game.check_request_key(text, boolean) IS
    'Raises WF006 for a missing (when required), blank, over 128 characters or control-character request key.';

CREATE FUNCTION game.check_id(name text, value bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF check_id.value IS NULL OR check_id.value <= 0 THEN
        PERFORM game.invalid_argument(check_id.name, format('%s must be a positive integer', check_id.name),
                                      jsonb_build_object('value', check_id.value));
    END IF;
END
$$;
COMMENT ON FUNCTION game.check_id(text, bigint) IS 'Raises WF006 for a NULL or non-positive id.';

-- The clock ---------------------------------------------------------------------------------
CREATE FUNCTION game.may_set_clock() RETURNS boolean
    LANGUAGE sql STABLE
RETURN coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = session_user), false)
    OR pg_catalog.pg_has_role(session_user, 'waifu_clock', 'MEMBER');
COMMENT ON FUNCTION game.may_set_clock() IS
    'True if the logged-in role (not the function owner) is a superuser or a member of waifu_clock.';

-- Only the server chooses the time. The session_user is checked (inside a SECURITY
-- DEFINER function current_user is the owner). A transaction held open for minutes is
-- refused too: its now() would be an old time chosen by the caller.
CREATE FUNCTION game.checked_now(now timestamptz) RETURNS timestamptz
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF checked_now.now = pg_catalog.transaction_timestamp()
       AND pg_catalog.clock_timestamp() - checked_now.now < interval '5 minutes' THEN
        RETURN checked_now.now;
    END IF;
    IF checked_now.now IS NULL OR NOT pg_catalog.isfinite(checked_now.now)
       OR checked_now.now < timestamptz '2000-01-01 00:00+00'
       OR checked_now.now >= timestamptz '2200-01-01 00:00+00' THEN
        PERFORM game.invalid_argument('now', checked_now.now::text, 'now must be a time between 2000 and 2200');
    END IF;
    IF NOT game.may_set_clock() THEN
        IF checked_now.now = pg_catalog.transaction_timestamp() THEN
            PERFORM game.invalid_argument('now', checked_now.now::text,
                'the transaction is too old: call again in a new transaction');
        END IF;
        PERFORM game.invalid_argument('now', checked_now.now::text,
            'only the server chooses the time: leave now out');
    END IF;
    RETURN checked_now.now;
END
$$;
COMMENT ON FUNCTION game.checked_now(timestamptz) IS
    'The time to use: `now` if it is this transaction''s time, or if the caller may set the clock; else WF006.';

-- Lookups -----------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION game.require_player(telegram_id bigint) RETURNS game.players
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    p game.players;
BEGIN
    PERFORM game.check_id('telegram_id', require_player.telegram_id);
    SELECT * INTO p FROM game.players AS pl WHERE pl.telegram_id = require_player.telegram_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'player % is not registered', require_player.telegram_id
            USING ERRCODE = 'WF005', DETAIL = jsonb_build_object('telegram_id', require_player.telegram_id)::text,
                  HINT = 'Call api.register_player first (the bot does this on /start).';
    END IF;
    RETURN p;
END
$$;

CREATE OR REPLACE FUNCTION game.require_waifu(waifu_id bigint, owner_id bigint DEFAULT NULL) RETURNS game.waifus
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    w game.waifus;
BEGIN
    PERFORM game.check_id('waifu_id', require_waifu.waifu_id);
    SELECT * INTO w FROM game.waifus AS x
    WHERE x.id = require_waifu.waifu_id
      AND (require_waifu.owner_id IS NULL OR x.owner_id = require_waifu.owner_id);
    IF NOT FOUND THEN
        IF require_waifu.owner_id IS NOT NULL THEN
            PERFORM game.require_player(require_waifu.owner_id);  -- WF005 before WF004
        END IF;
        PERFORM game.waifu_not_found(require_waifu.waifu_id);
    END IF;
    RETURN w;
END
$$;
COMMENT ON FUNCTION game.require_waifu(bigint, bigint) IS
    'The waifu (owned by owner_id when given), or WF006 (bad id) / WF005 (owner not registered) / WF004.';

-- Events: when one is open, when a waifu may play it again -----------------------------------
CREATE FUNCTION game.event_is_open(e game.events, at timestamptz) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN (e.starts_at IS NULL OR e.starts_at <= at) AND (e.ends_at IS NULL OR at < e.ends_at);
COMMENT ON FUNCTION game.event_is_open(game.events, timestamptz) IS 'True if event e is open at `at`.';

-- The waifu's own record of when she last played each event (epoch seconds), so the
-- cooldown rule does not depend on how long the ledger is kept.
ALTER TABLE game.waifus ADD COLUMN last_played jsonb NOT NULL DEFAULT '{}';
COMMENT ON COLUMN game.waifus.last_played IS '{event_code: epoch seconds of her last participation}: cooldowns.';
UPDATE game.waifus AS w SET last_played = l.played
FROM (SELECT p.waifu_id, jsonb_object_agg(p.event_code, extract(epoch FROM p.last_at)) AS played
      FROM (SELECT waifu_id, event_code, max(participated_at) AS last_at
            FROM game.participations GROUP BY waifu_id, event_code) AS p
      GROUP BY p.waifu_id) AS l
WHERE l.waifu_id = w.id;

CREATE FUNCTION game.cooldown_ends_at(last_played jsonb, e game.events) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN e.cooldown > interval '0' AND last_played ? e.code
            THEN to_timestamp((last_played ->> e.code)::double precision) + e.cooldown END;
COMMENT ON FUNCTION game.cooldown_ends_at(jsonb, game.events) IS
    'When a waifu with this last_played record may play event e again (NULL: no cooldown running or ever).';

-- The restore tick's index: heap-only updates ------------------------------------------------
-- A regenerating waifu stays regenerating from tick to tick until she is full, so a tick
-- changes no indexed value and every update but the filling one is heap-only (HOT).
-- fillfactor leaves room on each page for the new versions.
DROP INDEX game.waifus_energy_due_idx;
ALTER TABLE game.waifus SET (fillfactor = 85);
ALTER TABLE game.waifus
    ADD COLUMN regenerating boolean GENERATED ALWAYS AS ((dynamic ->> 'energy')::integer < game.max_energy()) STORED;
COMMENT ON COLUMN game.waifus.regenerating IS 'Energy below the cap (derived from dynamic): the tick''s work list.';
CREATE INDEX waifus_regenerating_idx ON game.waifus (id) WHERE regenerating;

-- One waifu per template per player.
DO $$
DECLARE
    extra bigint;
BEGIN
    SELECT count(*) - count(DISTINCT (owner_id, template_code)) INTO extra FROM game.waifus;
    IF extra > 0 THEN
        RAISE EXCEPTION '% waifus repeat a template their player already owns', extra
            USING HINT = 'A player may now adopt each template once. List them with: SELECT owner_id, '
                         'template_code, array_agg(id ORDER BY id) FROM game.waifus GROUP BY 1, 2 HAVING count(*) > 1; '
                         'decide which to keep (ops.set_stat can move stats), delete the others, then migrate again.';
    END IF;
END
$$;
ALTER TABLE game.waifus ADD CONSTRAINT waifus_one_per_template UNIQUE (owner_id, template_code);

-- Players: settings the bot reads, the daily streak -----------------------------------------
ALTER TABLE game.players
    ADD COLUMN notifications boolean NOT NULL DEFAULT true,
    ADD COLUMN language text NOT NULL DEFAULT 'auto' CHECK (language IN ('auto', 'en', 'ru')),
    ADD COLUMN timezone text CHECK (length(timezone) <= 64),
    ADD COLUMN daily_streak integer NOT NULL DEFAULT 0 CHECK (daily_streak >= 0),
    ADD COLUMN daily_last date;
COMMENT ON COLUMN game.players.notifications IS 'Send "she is rested" messages (the player''s setting).';
COMMENT ON COLUMN game.players.language IS 'auto (from Telegram''s language_code) | en | ru.';
COMMENT ON COLUMN game.players.timezone IS 'IANA name for the daily reward''s day; NULL = UTC.';

-- The outbox the bot's sender drains --------------------------------------------------------
-- No foreign key to players: the tick inserts a row per player it fills, and the key's
-- check (a KEY SHARE lock on each player row) was half the cost of those inserts
-- (measured: 1.25 of 2.7 s for 100,000 rows). Rows are short-lived (purged after
-- game.config.notification_retention) and the sender reads the player anyway.
CREATE TABLE game.notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    telegram_id  bigint NOT NULL,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    claimed_by   text,
    sent_at      timestamptz
);
COMMENT ON TABLE game.notifications IS
    'Outbox of chat messages to players, written in the transaction that caused them; the bot sends them.';
COMMENT ON COLUMN game.notifications.available_at IS 'Not before: creation, the end of a claim''s lease, or a retry_after.';
CREATE INDEX notifications_pending_idx ON game.notifications (available_at) WHERE sent_at IS NULL;

-- The ledger: compact, partitioned by week -------------------------------------------------
-- A row records what was applied; a replay rebuilds the answer from it and the waifu's
-- current stats, so the row no longer carries the whole result (most of the WAL of a
-- participation). A request key is unique per player within a partition (a unique index
-- on each); across partitions the participation's advisory lock and look-up keep it so.
-- Views over the old ledger go first (recreated below over the new one).
DROP VIEW ops.recent_participations;
DROP VIEW ops.events;
DROP VIEW ops.overview;
ALTER TABLE game.participations RENAME TO participations_v1;
ALTER TABLE game.participations_v1 RENAME CONSTRAINT participations_request_once TO participations_v1_request_once;
ALTER INDEX game.participations_cooldown_idx RENAME TO participations_v1_cooldown_idx;
CREATE TABLE game.participations (
    participated_at timestamptz NOT NULL,
    telegram_id     bigint NOT NULL,
    waifu_id        bigint NOT NULL,
    xp_gained       integer NOT NULL,
    level_before    integer NOT NULL,
    level_after     integer NOT NULL,
    energy_spent    smallint NOT NULL,
    mood_change     smallint NOT NULL,
    loyalty_change  smallint NOT NULL,
    event_code      text NOT NULL,
    request_key     text NOT NULL
) PARTITION BY RANGE (participated_at);
COMMENT ON TABLE game.participations IS
    'Ledger of applied participations (changes as applied, after clamping); weekly partitions, '
    'dropped whole after game.config.ledger_retention. See ops.ledger.';
-- Time-ordered reads (ops.recent_participations) without a B-tree written on every call.
CREATE INDEX participations_at_brin ON game.participations USING brin (participated_at);
CREATE TABLE game.participations_default PARTITION OF game.participations DEFAULT;
CREATE UNIQUE INDEX participations_default_request_once ON game.participations_default (telegram_id, request_key);
COMMENT ON TABLE game.participations_default IS
    'Catches rows of weeks with no partition yet; game.maintain_ledger moves them into their week.';

CREATE FUNCTION game.ledger_week(at timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_trunc('week', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
COMMENT ON FUNCTION game.ledger_week(timestamptz) IS 'Start (Monday 00:00 UTC) of the ledger partition holding `at`.';

-- Creates the partitions from the oldest row still in the window (or in the default
-- partition) to `premake` weeks ahead, and drops partitions wholly older than the
-- retention window. Never deletes ledger rows one by one.
CREATE FUNCTION game.maintain_ledger(at timestamptz DEFAULT now(), premake integer DEFAULT 4) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- Only the server's time (game.checked_now): a moved clock would drop current weeks,
    -- and with them the record of which request keys were applied.
    run_at timestamptz := game.checked_now(maintain_ledger.at);
    retention interval := (SELECT c.ledger_retention FROM game.config AS c);
    horizon timestamptz := run_at - retention;
    week timestamptz;
    last_week timestamptz;
    part record;
    name text;
    created text[] := ARRAY[]::text[];
    dropped text[] := ARRAY[]::text[];
    moved bigint := 0::bigint;
    n bigint;
BEGIN
    IF maintain_ledger.premake IS NULL OR maintain_ledger.premake NOT BETWEEN 0 AND 52 THEN
        PERFORM game.invalid_argument('premake', maintain_ledger.premake::text, 'premake must be 0..52 weeks');
    END IF;
    last_week := game.ledger_week(run_at) + maintain_ledger.premake * interval '1 week';
    -- One maintenance at a time (the job and an operator's manual call).
    PERFORM pg_advisory_xact_lock(hashtextextended('waifu:game.maintain_ledger', 0));

    week := game.ledger_week(least(horizon,
        coalesce((SELECT min(d.participated_at) FROM game.participations_default AS d), horizon)));
    WHILE week <= last_week LOOP
        name := 'participations_' || to_char(week AT TIME ZONE 'UTC', 'IYYY"w"IW');
        -- A week wholly before the window is made only to take rows out of the default
        -- partition (and is then dropped below with the other old weeks).
        IF to_regclass('game.' || name) IS NULL
           AND (week + interval '1 week' > horizon
                OR EXISTS (SELECT 1 FROM game.participations_default AS d
                           WHERE d.participated_at >= week AND d.participated_at < week + interval '1 week')) THEN
            EXECUTE format('CREATE TABLE game.%I (LIKE game.participations)', name);
            EXECUTE format('WITH m AS (DELETE FROM game.participations_default AS d
                                       WHERE d.participated_at >= $1 AND d.participated_at < $2 RETURNING d.*)
                            INSERT INTO game.%I SELECT * FROM m', name)
                USING week, week + interval '1 week';
            GET DIAGNOSTICS n = ROW_COUNT;
            moved := moved + n;
            EXECUTE format('CREATE UNIQUE INDEX %I ON game.%I (telegram_id, request_key)', name || '_request_once', name);
            EXECUTE format('ALTER TABLE game.participations ATTACH PARTITION game.%I FOR VALUES FROM (%L) TO (%L)',
                           name, week, week + interval '1 week');
            created := created || name;
        END IF;
        week := week + interval '1 week';
    END LOOP;

    FOR part IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'game.participations'::regclass AND c.relname <> 'participations_default'
    LOOP
        IF part.upper_bound <= horizon THEN
            EXECUTE format('DROP TABLE game.%I', part.relname);
            dropped := dropped || part.relname::text;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('created', to_jsonb(created), 'dropped', to_jsonb(dropped), 'moved_from_default', moved,
                              'retention', retention::text);
END
$$;
REVOKE ALL ON FUNCTION game.maintain_ledger(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.maintain_ledger(timestamptz, integer) TO waifu_cron, waifu_ops;
COMMENT ON FUNCTION game.maintain_ledger(timestamptz, integer) IS
$$Create the ledger's weekly partitions up to `premake` weeks ahead (moving rows out of the default
partition) and drop the partitions wholly older than game.config.ledger_retention.
pg_cron runs it daily (job ledger-partitions). Returns {created, dropped, moved_from_default, retention}.
Errors: WF006 premake outside 0..52, or an `at` other than now from a caller that may not set the clock.$$;

-- Existing rows: into the new ledger (the default partition first, then their weeks).
INSERT INTO game.participations (participated_at, telegram_id, waifu_id, xp_gained, level_before, level_after,
                                 energy_spent, mood_change, loyalty_change, event_code, request_key)
SELECT p.participated_at, p.telegram_id, p.waifu_id, p.xp_gained,
       coalesce((p.result #>> '{changes,level_before}')::integer, 1),
       coalesce((p.result #>> '{changes,level_after}')::integer, 1),
       p.energy_spent, p.mood_change, p.loyalty_change, p.event_code, p.request_key
FROM game.participations_v1 AS p;
DROP TABLE game.participations_v1;
DO $$
BEGIN
    PERFORM game.maintain_ledger();
END
$$;

-- The stats card: unchanged shape -----------------------------------------------------------
-- (game.stats_json from 0002 stays.)

-- Events for a waifu -------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION game.events_for(w game.waifus, at timestamptz) RETURNS jsonb
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    energy integer := (game.regen(events_for.w.dynamic, events_for.at) ->> 'energy')::integer;
BEGIN
    -- PL/pgSQL rather than a SQL body: a SQL function with a sub-select is planned again
    -- on every call; PL/pgSQL caches the plan per session.
    RETURN (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                'code', e.code,
                'title', e.title,
                'energy_cost', e.energy_cost,
                'xp_reward', e.xp_reward,
                'mood_delta', e.mood_delta,
                'loyalty_delta', e.loyalty_delta,
                'cooldown_seconds', extract(epoch FROM e.cooldown)::integer,
                'cooldown_remaining_seconds',
                    greatest(0, ceil(extract(epoch FROM (c.ends_at - events_for.at))))::integer,
                'available_at', CASE WHEN c.ends_at > events_for.at THEN c.ends_at END,
                'starts_at', e.starts_at,
                'ends_at', e.ends_at,
                'enough_energy', energy >= e.energy_cost)
                ORDER BY e.energy_cost, e.code), '[]'::jsonb)
        FROM game.events AS e
        CROSS JOIN LATERAL (SELECT game.cooldown_ends_at(events_for.w.last_played, e) AS ends_at) AS c
        WHERE game.event_is_open(e, events_for.at));
END
$$;

-- The api ------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION api.player_profile(telegram_id bigint, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
        'registered_at', p.registered_at,
        'waifus', coalesce((
            SELECT jsonb_agg(game.stats_json(w, game.regen(w.dynamic, at), at) ORDER BY w.id)
            FROM game.waifus AS w
            WHERE w.owner_id = p.telegram_id), '[]'::jsonb));
END
$$;

CREATE OR REPLACE FUNCTION api.register_player(telegram_id bigint, username text, first_name text, language_code text)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM game.check_id('telegram_id', register_player.telegram_id);
    PERFORM game.check_text('username', register_player.username, 64, false);
    PERFORM game.check_text('first_name', register_player.first_name, 256, false);
    PERFORM game.check_text('language_code', register_player.language_code, 16, false);

    INSERT INTO game.players AS p (telegram_id, username, first_name, language_code)
    VALUES (register_player.telegram_id, register_player.username, register_player.first_name,
            register_player.language_code)
    ON CONFLICT ON CONSTRAINT players_pkey DO UPDATE
        SET username = excluded.username, first_name = excluded.first_name,
            language_code = excluded.language_code, updated_at = now()
        WHERE (p.username, p.first_name, p.language_code)
              IS DISTINCT FROM (excluded.username, excluded.first_name, excluded.language_code);
    RETURN api.player_profile(register_player.telegram_id);
END
$$;
COMMENT ON FUNCTION api.register_player(bigint, text, text, text) IS
$$Register a Telegram user, or refresh their names (idempotent upsert).
Returns the profile (api.player_profile shape).
Errors: WF006 telegram_id not positive, or a text blank or too long.$$;

CREATE OR REPLACE FUNCTION api.waifu_templates() RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((
        SELECT jsonb_agg(jsonb_build_object('code', t.code, 'name', t.name, 'description', t.description)
                         ORDER BY t.name)
        FROM game.waifu_templates AS t), '[]'::jsonb);
END
$$;

CREATE OR REPLACE FUNCTION api.adopt_waifu(telegram_id bigint, template_code text, request_key text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
    VALUES (adopt_waifu.telegram_id, t.code, t.name, game.new_dynamic(now()), adopt_waifu.request_key)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION api.adopt_waifu(bigint, text, text) IS
$$Adopt a starter waifu (full energy, starting mood and loyalty, xp 0); returns the new waifu's id.
A player adopts each template once (a collection).
request_key (optional): the same key again returns the same waifu instead of a second one.
Errors: WF005 not registered; WF006 bad argument or unknown template; WF007 key used for another
template; WF008 template already adopted {template_code, waifu_id, limit}.$$;

CREATE OR REPLACE FUNCTION api.waifu_stats(waifu_id bigint, now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(waifu_stats.now);
    w game.waifus := game.require_waifu(waifu_stats.waifu_id);
BEGIN
    RETURN game.stats_json(w, game.regen(w.dynamic, at), at);
END
$$;

CREATE OR REPLACE FUNCTION api.player_waifu_stats(telegram_id bigint, waifu_id bigint, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(player_waifu_stats.now);
    w game.waifus;
BEGIN
    PERFORM game.check_id('telegram_id', player_waifu_stats.telegram_id);
    w := game.require_waifu(player_waifu_stats.waifu_id, player_waifu_stats.telegram_id);
    RETURN game.stats_json(w, game.regen(w.dynamic, at), at);
END
$$;

CREATE OR REPLACE FUNCTION api.available_events(waifu_id bigint, now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(available_events.now);
    w game.waifus := game.require_waifu(available_events.waifu_id);
BEGIN
    RETURN game.events_for(w, at);
END
$$;

CREATE OR REPLACE FUNCTION api.player_available_events(telegram_id bigint, waifu_id bigint, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(player_available_events.now);
    w game.waifus;
BEGIN
    PERFORM game.check_id('telegram_id', player_available_events.telegram_id);
    w := game.require_waifu(player_available_events.waifu_id, player_available_events.telegram_id);
    RETURN game.events_for(w, at);
END
$$;

-- The answer to a participation: the stats after it plus what it changed. Used for the
-- first answer and for a replay (then with the waifu's current stats).
CREATE FUNCTION game.participation_json(w game.waifus, dynamic jsonb, at timestamptz, p game.participations,
                                        event_title text, replayed boolean) RETURNS jsonb
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN game.stats_json(participation_json.w, participation_json.dynamic, participation_json.at)
        || jsonb_build_object(
            'event_code', participation_json.p.event_code,
            'event_title', participation_json.event_title,
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
COMMENT ON FUNCTION game.participation_json(game.waifus, jsonb, timestamptz, game.participations, text, boolean) IS
    'Answer of api.participate_in_event: stats card + {event_code, event_title, request_key, participated_at, changes, replayed}.';

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

-- The restore tick ---------------------------------------------------------------------------
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
REVOKE ALL ON FUNCTION api.restore_energy(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.restore_energy(timestamptz) TO waifu_ops, waifu_cron;
COMMENT ON FUNCTION api.restore_energy(timestamptz) IS
$$Store the energy restored up to now for every due waifu; returns how many were updated.
Waifus it fills get one "she is rested" notification per player (game.notifications, if the player
has them on), then NOTIFY waifu_notifications. pg_cron runs it every minute (job restore-energy).
Idempotent for the same now; catches up exactly after an outage. Reads never depend on it.$$;

-- ops ----------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ops.create_event(code text, title text, energy_cost integer, xp_reward integer,
                                            mood_delta integer, loyalty_delta integer, cooldown interval,
                                            starts_at timestamptz DEFAULT NULL, ends_at timestamptz DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e game.events;
BEGIN
    IF create_event.code IS NULL OR create_event.code !~ '^[a-z0-9_]{1,32}$' THEN
        PERFORM game.invalid_argument('code', create_event.code,
            'event code must be 1-32 characters of a-z, 0-9 and _');
    END IF;
    PERFORM game.check_text('title', create_event.title, 200, true);
    IF create_event.energy_cost IS NULL OR create_event.energy_cost NOT BETWEEN 0 AND game.max_energy() THEN
        PERFORM game.invalid_argument('energy_cost', create_event.energy_cost::text,
            format('energy_cost must be between 0 and %s', game.max_energy()));
    END IF;
    IF create_event.xp_reward IS NULL OR create_event.xp_reward < 0 THEN
        PERFORM game.invalid_argument('xp_reward', create_event.xp_reward::text, 'xp_reward must be 0 or more');
    END IF;
    IF create_event.mood_delta IS NULL OR create_event.mood_delta NOT BETWEEN -game.max_stat() AND game.max_stat() THEN
        PERFORM game.invalid_argument('mood_delta', create_event.mood_delta::text,
            format('mood_delta must be between -%1$s and %1$s', game.max_stat()));
    END IF;
    IF create_event.loyalty_delta IS NULL OR create_event.loyalty_delta NOT BETWEEN -game.max_stat() AND game.max_stat() THEN
        PERFORM game.invalid_argument('loyalty_delta', create_event.loyalty_delta::text,
            format('loyalty_delta must be between -%1$s and %1$s', game.max_stat()));
    END IF;
    IF create_event.cooldown IS NULL OR create_event.cooldown < interval '0'
       OR create_event.cooldown > interval '366 days' THEN
        PERFORM game.invalid_argument('cooldown', create_event.cooldown::text, 'cooldown must be 0 to 366 days');
    END IF;
    IF NOT isfinite(create_event.starts_at) OR NOT isfinite(create_event.ends_at) THEN
        PERFORM game.invalid_argument('starts_at', create_event.starts_at::text,
            'starts_at and ends_at must be finite (NULL means open-ended)');
    END IF;
    IF create_event.ends_at <= create_event.starts_at THEN
        PERFORM game.invalid_argument('ends_at', create_event.ends_at::text, 'ends_at must be after starts_at');
    END IF;

    INSERT INTO game.events AS ev (code, title, energy_cost, xp_reward, mood_delta, loyalty_delta,
                                   cooldown, starts_at, ends_at)
    VALUES (create_event.code, create_event.title, create_event.energy_cost, create_event.xp_reward,
            create_event.mood_delta, create_event.loyalty_delta, create_event.cooldown,
            create_event.starts_at, create_event.ends_at)
    ON CONFLICT ON CONSTRAINT events_pkey DO UPDATE
        SET title = excluded.title, energy_cost = excluded.energy_cost, xp_reward = excluded.xp_reward,
            mood_delta = excluded.mood_delta, loyalty_delta = excluded.loyalty_delta,
            cooldown = excluded.cooldown, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
            updated_at = now()
    RETURNING ev.* INTO e;
    RETURN to_jsonb(e);
END
$$;
COMMENT ON FUNCTION ops.create_event(text, text, integer, integer, integer, integer, interval, timestamptz, timestamptz) IS
$$Create an event, or replace every field of an existing one with that code (upsert).
code: a-z, 0-9, _ (1-32); energy_cost 0..game.max_energy(); xp_reward >= 0; mood_delta/loyalty_delta
-game.max_stat()..game.max_stat(); cooldown per waifu, 0 to 366 days ('0' for none); optional window
starts_at .. ends_at (null = open-ended).
Example: SELECT ops.create_event('picnic', 'Picnic', 15, 25, 5, 2, '1 hour');
Returns the event row as JSON. Errors: WF006 invalid argument (DETAIL names it).$$;

CREATE OR REPLACE FUNCTION ops.close_event(code text, at timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
COMMENT ON FUNCTION ops.close_event(text, timestamptz) IS
$$Close an event from `at` on (default now): players no longer see it. The ledger keeps its history.
Reopen with ops.create_event. Errors: WF002 no such event; WF006 at NULL or infinite.$$;

CREATE OR REPLACE FUNCTION ops.set_stat(waifu_id bigint, stat text, value integer, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w game.waifus;
    current_stats jsonb;
    old_value bigint;
    high integer;
    at timestamptz := now();
BEGIN
    PERFORM game.check_id('waifu_id', set_stat.waifu_id);
    high := CASE set_stat.stat
        WHEN 'xp' THEN 2147483647
        WHEN 'energy' THEN game.max_energy()
        WHEN 'mood' THEN game.max_stat()
        WHEN 'loyalty' THEN game.max_stat()
    END;
    IF high IS NULL THEN
        PERFORM game.invalid_argument('stat', set_stat.stat, 'stat must be one of xp, energy, mood, loyalty');
    END IF;
    IF set_stat.value IS NULL OR set_stat.value NOT BETWEEN 0 AND high THEN
        PERFORM game.invalid_argument('value', set_stat.value::text,
            format('%s must be between 0 and %s', set_stat.stat, high));
    END IF;
    PERFORM game.check_text('reason', set_stat.reason, 500, false);

    SELECT * INTO w FROM game.waifus AS x WHERE x.id = set_stat.waifu_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM game.waifu_not_found(set_stat.waifu_id);
    END IF;
    current_stats := game.regen(w.dynamic, at);
    old_value := (current_stats ->> set_stat.stat)::bigint;

    -- Setting energy follows the spending rule: a waifu that was full starts its clock now.
    UPDATE game.waifus AS x
    SET dynamic = jsonb_set(jsonb_set(current_stats, ARRAY[set_stat.stat], to_jsonb(set_stat.value)),
                            '{last_restore}',
                            CASE WHEN set_stat.stat = 'energy' AND old_value >= game.max_energy()
                                 THEN to_jsonb(extract(epoch FROM at))
                                 ELSE current_stats -> 'last_restore' END)
    WHERE x.id = w.id
    RETURNING x.* INTO w;

    INSERT INTO game.stat_corrections (waifu_id, stat, old_value, new_value, reason)
    VALUES (w.id, set_stat.stat, old_value, set_stat.value, set_stat.reason);
    RETURN game.stats_json(w, w.dynamic, at);
END
$$;
COMMENT ON FUNCTION ops.set_stat(bigint, text, integer, text) IS
$$Correct one stat of a waifu by hand; recorded in game.stat_corrections (see ops.stat_corrections).
stat: xp | energy | mood | loyalty; value: 0..game.max_energy() (energy), 0..game.max_stat() (mood,
loyalty) or >= 0 (xp).
Example: SELECT ops.set_stat(42, 'energy', 100, 'refund for outage #12');
Returns the stats (api.waifu_stats shape). Errors: WF006 bad id, stat, value or reason; WF004 waifu not found.$$;

CREATE FUNCTION ops.set_config(ledger_retention interval DEFAULT NULL, notification_retention interval DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
REVOKE ALL ON FUNCTION ops.set_config(interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_config(interval, interval) TO waifu_ops;
COMMENT ON FUNCTION ops.set_config(interval, interval) IS
$$Change game settings; a NULL argument keeps the current value. Returns every setting.
ledger_retention (7 days..10 years, default 30 days): ledger partitions wholly older are dropped by the
daily job ledger-partitions. notification_retention (1 hour..1 year, default 7 days): sent notifications
are purged after it.
Example: SELECT ops.set_config(ledger_retention => '90 days');
Errors: WF006 out of range.$$;

-- Housekeeping jobs, as functions waifu_cron may run ------------------------------------------
CREATE FUNCTION game.purge_cron_history(keep interval DEFAULT '14 days') RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    purged bigint;
BEGIN
    IF purge_cron_history.keep IS NULL OR purge_cron_history.keep < interval '1 hour'
       OR purge_cron_history.keep > interval '10 years' THEN
        PERFORM game.invalid_argument('keep', purge_cron_history.keep::text, 'keep must be 1 hour to 10 years');
    END IF;
    DELETE FROM cron.job_run_details AS d WHERE d.end_time < now() - purge_cron_history.keep;
    GET DIAGNOSTICS purged = ROW_COUNT;
    RETURN purged;
END
$$;
REVOKE ALL ON FUNCTION game.purge_cron_history(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.purge_cron_history(interval) TO waifu_cron, waifu_ops;
COMMENT ON FUNCTION game.purge_cron_history(interval) IS
    'Delete pg_cron run history older than `keep` (pg_cron never cleans it); job purge-cron-history.';

-- Privileges: the bot gets exactly what bot/game.py calls; the owner-blind reads and
-- the tick are for operators, tests and pg_cron.
REVOKE EXECUTE ON FUNCTION api.waifu_stats(bigint, timestamptz), api.available_events(bigint, timestamptz)
    FROM waifu_bot;

-- Views ----------------------------------------------------------------------------------------
CREATE VIEW ops.recent_participations AS
SELECT p.participated_at, p.telegram_id, p.waifu_id, p.event_code, p.energy_spent, p.xp_gained,
       p.mood_change, p.loyalty_change, p.level_before, p.level_after, p.request_key
FROM game.participations AS p
WHERE p.participated_at > now() - interval '1 day'
ORDER BY p.participated_at DESC
LIMIT 100;
COMMENT ON VIEW ops.recent_participations IS 'The last 100 participations of the past day, newest first.';

CREATE VIEW ops.overview AS
SELECT (SELECT count(*) FROM game.players) AS players,
       (SELECT count(*) FROM game.waifus) AS waifus,
       (SELECT count(*) FROM game.waifus AS w WHERE w.regenerating) AS waifus_below_max_energy,
       (SELECT count(*) FROM game.participations AS p
        WHERE p.participated_at > now() - interval '24 hours') AS participations_24h,
       (SELECT count(*) FROM game.events AS e WHERE game.event_is_open(e, now())) AS open_events;
COMMENT ON VIEW ops.overview IS 'One-row summary: players, waifus, how many regenerate, activity in 24 h.';

CREATE VIEW ops.events AS
SELECT e.code, e.title, e.energy_cost, e.xp_reward, e.mood_delta, e.loyalty_delta, e.cooldown,
       e.starts_at, e.ends_at, game.event_is_open(e, now()) AS open_now,
       (SELECT count(*) FROM game.participations AS p
        WHERE p.event_code = e.code AND p.participated_at > now() - interval '24 hours') AS participations_24h
FROM game.events AS e;
COMMENT ON VIEW ops.events IS 'Events, whether each is open now, and how often it was played in the last 24 hours.';

CREATE VIEW ops.ledger AS
SELECT c.relname AS partition,
       CASE WHEN c.relname = 'participations_default' THEN NULL
            ELSE (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz
       END AS starts_at,
       CASE WHEN c.relname = 'participations_default' THEN NULL
            ELSE (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
       END AS ends_at,
       c.reltuples::bigint AS estimated_rows,
       pg_total_relation_size(c.oid) AS bytes,
       cfg.ledger_retention AS retention,
       now() - cfg.ledger_retention AS window_starts_at
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
CROSS JOIN game.config AS cfg
WHERE i.inhparent = 'game.participations'::regclass
ORDER BY 2 NULLS FIRST;
COMMENT ON VIEW ops.ledger IS
    'The ledger''s partitions (weekly; the default one catches weeks not yet created), sizes, and the retention window.';

CREATE VIEW ops.config AS SELECT ledger_retention, notification_retention FROM game.config;
COMMENT ON VIEW ops.config IS 'Game settings (change with ops.set_config).';

CREATE VIEW ops.help AS
SELECT n.nspname || '.' || p.proname AS name,
       CASE p.prokind WHEN 'f' THEN 'function' ELSE 'procedure' END AS kind,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS returns,
       split_part(coalesce(obj_description(p.oid, 'pg_proc'), ''), E'\n', 1) AS description
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('ops', 'api')
UNION ALL
SELECT n.nspname || '.' || c.relname, 'view', NULL, NULL,
       split_part(coalesce(obj_description(c.oid, 'pg_class'), ''), E'\n', 1)
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'ops' AND c.relkind = 'v'
ORDER BY 2, 1;
COMMENT ON VIEW ops.help IS
    'The operator''s manual: every ops/api function and ops view with its arguments and first line of its comment.';

DROP VIEW ops.cron_failures;
DROP VIEW ops.cron_jobs;
CREATE VIEW ops.cron_jobs AS
SELECT j.jobid, j.jobname, j.schedule, j.command, j.active, j.username AS run_as,
       last.start_time AS last_start, last.end_time AS last_end, last.status AS last_status,
       last.return_message AS last_message,
       (SELECT count(*) FROM cron.job_run_details AS d
        WHERE d.jobid = j.jobid AND d.status = 'failed' AND d.start_time > now() - interval '24 hours')
           AS failures_24h,
       (SELECT count(*) FROM cron.job_run_details AS d
        WHERE d.jobid = j.jobid AND d.status = 'succeeded' AND d.start_time > now() - interval '1 hour')
           AS successes_1h,
       CASE
           WHEN NOT j.active THEN 'inactive'
           WHEN last.start_time IS NULL THEN 'never ran'
           WHEN last.status = 'failed' THEN 'failing'
           WHEN j.jobname = 'restore-energy' AND last.start_time < now() - interval '3 minutes' THEN 'stalled'
           WHEN j.jobname = 'ledger-partitions' AND last.start_time < now() - interval '2 days' THEN 'stalled'
           ELSE 'ok'
       END AS health
FROM cron.job AS j
LEFT JOIN LATERAL (
    SELECT d.start_time, d.end_time, d.status, d.return_message
    FROM cron.job_run_details AS d
    WHERE d.jobid = j.jobid
    ORDER BY d.start_time DESC NULLS LAST
    LIMIT 1) AS last ON true;
COMMENT ON VIEW ops.cron_jobs IS
    'pg_cron jobs, the role each runs as, their last run and failure counts; health: ok | failing | stalled | never ran | inactive.';

CREATE VIEW ops.cron_failures AS
SELECT j.jobname, d.start_time, d.end_time, d.return_message, d.command
FROM cron.job_run_details AS d
LEFT JOIN cron.job AS j ON j.jobid = d.jobid
WHERE d.status = 'failed'
ORDER BY d.start_time DESC
LIMIT 50;
COMMENT ON VIEW ops.cron_failures IS 'The last 50 failed pg_cron runs with their error.';

GRANT SELECT ON ALL TABLES IN SCHEMA ops TO waifu_ops;
GRANT SELECT ON game.config, game.notifications TO waifu_ops;
GRANT EXECUTE ON FUNCTION game.event_is_open(game.events, timestamptz), game.start_mood(), game.start_loyalty()
    TO waifu_ops;

-- pg_cron jobs, run as waifu_cron ---------------------------------------------------------------
-- A named job is unique per (name, role): the old jobs (run as the migrating superuser)
-- are removed first, or regeneration would run twice.
DO $$
BEGIN
    PERFORM cron.unschedule(j.jobid) FROM cron.job AS j
    WHERE j.jobname IN ('restore-energy', 'purge-cron-history', 'ledger-partitions');
    PERFORM cron.schedule_in_database('restore-energy', '* * * * *', 'SELECT api.restore_energy()',
                                      current_database(), 'waifu_cron');
    PERFORM cron.schedule_in_database('purge-cron-history', '17 3 * * *', 'SELECT game.purge_cron_history()',
                                      current_database(), 'waifu_cron');
    PERFORM cron.schedule_in_database('ledger-partitions', '7 0 * * *', 'SELECT game.maintain_ledger()',
                                      current_database(), 'waifu_cron');
END
$$;
