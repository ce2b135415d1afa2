-- A game people come back to together (issue 19): a collection, coins and gifts,
-- leaderboards, group chats and their events.
--
-- * Collection: each template once, at most game.economy.waifus_per_player waifus per player;
--   rarity per template; a chosen waifu (players.active_waifu_id) for events.
-- * Coins: a wallet per player (game.wallets), paid by events (events.coin_reward) and the
--   daily reward (game.daily_coins), spent in the shop; every change of coins is a row of the
--   coin ledger game.coin_ledger (delta and balance after), in the transaction that made it.
-- * Shop: items defined by operators (ops.create_item, translated names), bought into an
--   inventory (api.buy_item) and given to a waifu (api.give_gift): to one's own, or in a group
--   chat to another member's. A gift to another's waifu moves the giver's standing only.
-- * Leaderboards: all-time and weekly XP per player kept in the wallet row, updated in the
--   transaction that gains the XP; the week starts Monday 00:00 UTC (game.ledger_week). A
--   player's rank is counted exactly among the first 1,000; below that it is read from a
--   table of every 100th place refreshed by pg_cron every 5 minutes (job leaderboard-steps).
-- * Groups: members register by using the bot in a group; an admin turns group events on;
--   ONE pg_cron job (group-events, every minute) opens and pays the events of every group
--   that opted in; messages to groups wait in game.group_messages and are claimed within the
--   shared limit group_send (Telegram's 20 a minute per group).
--
-- Lock order of every function here (no deadlock between them): the player's row, then
-- waifus (by id), then wallets, then inventory.
-- depends: 0011.no-stall

-- Settings of the game's economy ------------------------------------------------------------------

CREATE TABLE game.economy (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    waifus_per_player integer NOT NULL DEFAULT 5 CHECK (waifus_per_player BETWEEN 1 AND 100),
    group_event_every interval NOT NULL DEFAULT '4 hours'
        CHECK (group_event_every BETWEEN interval '15 minutes' AND interval '7 days'),
    group_event_window interval NOT NULL DEFAULT '10 minutes'
        CHECK (group_event_window BETWEEN interval '1 minute' AND interval '2 hours'),
    group_event_pool integer NOT NULL DEFAULT 100 CHECK (group_event_pool BETWEEN 0 AND 1000000),
    CHECK (group_event_window < group_event_every)
);
COMMENT ON TABLE game.economy IS 'Settings of the collection, shop and group events (one row). Change with ops.set_economy.';
INSERT INTO game.economy DEFAULT VALUES;
GRANT SELECT ON game.economy TO waifu_ops;

CREATE FUNCTION ops.set_economy(waifus_per_player integer DEFAULT NULL, group_event_every interval DEFAULT NULL,
                                group_event_window interval DEFAULT NULL, group_event_pool integer DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c game.economy;
BEGIN
    IF set_economy.waifus_per_player NOT BETWEEN 1 AND 100 THEN
        PERFORM game.invalid_argument('waifus_per_player', set_economy.waifus_per_player::text,
            'waifus_per_player must be between 1 and 100');
    END IF;
    IF NOT set_economy.group_event_every BETWEEN interval '15 minutes' AND interval '7 days' THEN
        PERFORM game.invalid_argument('group_event_every', set_economy.group_event_every::text,
            'group_event_every must be between 15 minutes and 7 days');
    END IF;
    IF NOT set_economy.group_event_window BETWEEN interval '1 minute' AND interval '2 hours' THEN
        PERFORM game.invalid_argument('group_event_window', set_economy.group_event_window::text,
            'group_event_window must be between 1 minute and 2 hours');
    END IF;
    IF set_economy.group_event_pool NOT BETWEEN 0 AND 1000000 THEN
        PERFORM game.invalid_argument('group_event_pool', set_economy.group_event_pool::text,
            'group_event_pool must be between 0 and 1000000');
    END IF;
    IF coalesce(set_economy.group_event_window, (SELECT e.group_event_window FROM game.economy AS e))
       >= coalesce(set_economy.group_event_every, (SELECT e.group_event_every FROM game.economy AS e)) THEN
        PERFORM game.invalid_argument('group_event_window', set_economy.group_event_window::text,
            'group_event_window must be shorter than group_event_every');
    END IF;
    UPDATE game.economy AS g
    SET waifus_per_player = coalesce(set_economy.waifus_per_player, g.waifus_per_player),
        group_event_every = coalesce(set_economy.group_event_every, g.group_event_every),
        group_event_window = coalesce(set_economy.group_event_window, g.group_event_window),
        group_event_pool = coalesce(set_economy.group_event_pool, g.group_event_pool)
    RETURNING g.* INTO c;
    RETURN to_jsonb(c) - 'singleton';
END
$$;
COMMENT ON FUNCTION ops.set_economy(integer, interval, interval, integer) IS
$$Change the economy's settings; a NULL argument keeps the current value. Returns every setting.
waifus_per_player (1..100, default 5): how many waifus one player may own (each template once).
group_event_every (15 minutes..7 days, default 4 hours): how often a group that turned events on gets one.
group_event_window (1 minute..2 hours, default 10 minutes, shorter than every): how long members may join.
group_event_pool (0..1000000, default 100): coins shared among an event's participants.
Example: SELECT ops.set_economy(waifus_per_player => 3);
Errors: WF006 out of range.$$;
REVOKE ALL ON FUNCTION ops.set_economy(integer, interval, interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_economy(integer, interval, interval, integer) TO waifu_ops;

CREATE VIEW ops.economy AS
SELECT e.waifus_per_player, e.group_event_every, e.group_event_window, e.group_event_pool FROM game.economy AS e;
COMMENT ON VIEW ops.economy IS 'Settings of the collection, shop and group events (change with ops.set_economy).';
GRANT SELECT ON ops.economy TO waifu_ops;

-- New refusals. Each names the one rule it enforces; DETAIL is JSON with the numbers.
CREATE FUNCTION game.refuse(code text, message text, detail jsonb) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION '%', left(refuse.message, 300)
        USING ERRCODE = refuse.code, DETAIL = left(coalesce(refuse.detail, '{}')::text, 600);
END
$$;
COMMENT ON FUNCTION game.refuse(text, text, jsonb) IS
    'Raises SQLSTATE `code` with a bounded message and JSON DETAIL (WF009 coins, WF010 item, WF011 inventory, ...).';
REVOKE ALL ON FUNCTION game.refuse(text, text, jsonb) FROM PUBLIC;

-- The collection ---------------------------------------------------------------------------------

ALTER TABLE game.waifu_templates
    ADD COLUMN rarity text NOT NULL DEFAULT 'common' CHECK (rarity IN ('common', 'rare', 'epic'));
COMMENT ON COLUMN game.waifu_templates.rarity IS 'common | rare | epic: shown with the template and her portrait.';
UPDATE game.waifu_templates AS t SET rarity = r.rarity
FROM (VALUES ('sakura', 'common'), ('hana', 'common'), ('yuki', 'rare'), ('rin', 'rare'), ('akane', 'epic'))
    AS r(code, rarity)
WHERE t.code = r.code;

ALTER TABLE game.players ADD COLUMN active_waifu_id bigint REFERENCES game.waifus ON DELETE SET NULL;
COMMENT ON COLUMN game.players.active_waifu_id IS
    'The waifu the player picked for events (api.set_active_waifu); NULL: the first adopted.';

-- A player's chosen waifu, or else her first one (NULL: none).
CREATE FUNCTION game.active_waifu(telegram_id bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN coalesce(
        (SELECT p.active_waifu_id FROM game.players AS p WHERE p.telegram_id = active_waifu.telegram_id),
        (SELECT min(w.id) FROM game.waifus AS w WHERE w.owner_id = active_waifu.telegram_id));
END
$$;
COMMENT ON FUNCTION game.active_waifu(bigint) IS 'The waifu a player picked for events, else their first; NULL if none.';
REVOKE ALL ON FUNCTION game.active_waifu(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION api.adopt_waifu(telegram_id bigint, template_code text, request_key text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t game.waifu_templates;
    existing game.waifus;
    owned bigint;
    max_owned integer := (SELECT e.waifus_per_player FROM game.economy AS e);
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
    SELECT count(*) INTO owned FROM game.waifus AS w WHERE w.owner_id = adopt_waifu.telegram_id;
    IF owned >= max_owned THEN
        RAISE EXCEPTION 'player % already has % waifus, the most one player may have', adopt_waifu.telegram_id, owned
            USING ERRCODE = 'WF008',
                  DETAIL = jsonb_build_object('limit', 'waifus_per_player', 'max', max_owned, 'owned', owned,
                                              'template_code', t.code)::text;
    END IF;

    INSERT INTO game.waifus (owner_id, template_code, name, dynamic, adopt_key)
    VALUES (adopt_waifu.telegram_id, t.code,
            coalesce((SELECT tr.name FROM game.template_translations AS tr
                      WHERE tr.template_code = t.code
                        AND tr.language = game.player_language(adopt_waifu.telegram_id)), t.name),
            game.new_dynamic(now()), adopt_waifu.request_key)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION api.adopt_waifu(bigint, text, text) IS
$$Adopt a starter waifu (full energy, starting mood and loyalty, xp 0); returns the new waifu's id.
She is named in the player's language (the template's translated name, else English).
A player adopts each template once (a collection), and owns at most game.economy.waifus_per_player.
request_key (optional): the same key again returns the same waifu instead of a second one.
Errors: WF005 not registered; WF006 bad argument or unknown template; WF007 key used for another
template; WF008 template already adopted {template_code, waifu_id, limit} or the collection is full
{limit: "waifus_per_player", max, owned}.$$;

CREATE OR REPLACE FUNCTION api.waifu_templates(language text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((
        SELECT jsonb_agg(jsonb_build_object('code', t.code, 'name', coalesce(tr.name, t.name),
                                            'description', coalesce(tr.description, t.description),
                                            'rarity', t.rarity)
                         ORDER BY coalesce(tr.name, t.name), t.code)
        FROM game.waifu_templates AS t
        LEFT JOIN game.template_translations AS tr
            ON tr.template_code = t.code AND tr.language = waifu_templates.language), '[]'::jsonb);
END
$$;
COMMENT ON FUNCTION api.waifu_templates(text) IS
$$The starter waifus a player can adopt: [{code, name, description, rarity}], by name.
language (optional: en, ru): names and descriptions in it where translated, else English.
rarity: common, rare or epic.$$;

CREATE FUNCTION api.player_waifus(telegram_id bigint, now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(player_waifus.now);
    p game.players := game.require_player(player_waifus.telegram_id);
    reader text := game.effective_language(p.language, p.language_code);
    active bigint := game.active_waifu(p.telegram_id);
BEGIN
    RETURN jsonb_build_object(
        'telegram_id', p.telegram_id,
        'active_waifu_id', active,
        'max', (SELECT e.waifus_per_player FROM game.economy AS e),
        'owned', (SELECT count(*) FROM game.waifus AS w WHERE w.owner_id = p.telegram_id),
        'waifus', coalesce((
            SELECT jsonb_agg(game.stats_json(w, game.regen(w.dynamic, at), at)
                             || jsonb_build_object('rarity', t.rarity, 'active', w.id = active) ORDER BY w.id)
            FROM game.waifus AS w JOIN game.waifu_templates AS t ON t.code = w.template_code
            WHERE w.owner_id = p.telegram_id), '[]'::jsonb),
        'templates', (
            SELECT jsonb_agg(jsonb_build_object(
                       'code', t.code, 'name', coalesce(tr.name, t.name),
                       'description', coalesce(tr.description, t.description), 'rarity', t.rarity,
                       'waifu_id', (SELECT w.id FROM game.waifus AS w
                                    WHERE w.owner_id = p.telegram_id AND w.template_code = t.code))
                   ORDER BY t.code)
            FROM game.waifu_templates AS t
            LEFT JOIN game.template_translations AS tr ON tr.template_code = t.code AND tr.language = reader));
END
$$;
COMMENT ON FUNCTION api.player_waifus(bigint, timestamptz) IS
$$The player's collection: every waifu's stats with her rarity and whether she is the one picked for events,
and every template with the waifu adopted from it (NULL: not yet).
Returns {telegram_id, active_waifu_id, max, owned, waifus: [api.waifu_stats shape + rarity, active],
templates: [{code, name, description, rarity, waifu_id}]}.
Errors: WF005 not registered; WF006 a `now` the caller may not choose.$$;
REVOKE ALL ON FUNCTION api.player_waifus(bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.player_waifus(bigint, timestamptz) TO waifu_bot, waifu_ops;

CREATE FUNCTION api.set_active_waifu(telegram_id bigint, waifu_id bigint) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w game.waifus := game.require_waifu(set_active_waifu.waifu_id, set_active_waifu.telegram_id);
BEGIN
    UPDATE game.players AS p SET active_waifu_id = w.id, updated_at = now()
    WHERE p.telegram_id = set_active_waifu.telegram_id;
    RETURN jsonb_build_object('telegram_id', set_active_waifu.telegram_id, 'active_waifu_id', w.id, 'name', w.name);
END
$$;
COMMENT ON FUNCTION api.set_active_waifu(bigint, bigint) IS
$$Pick the waifu that takes part in events and group events by default. Returns {telegram_id, active_waifu_id, name}.
Errors: WF004 not the player's waifu; WF005 not registered; WF006 bad id.$$;
REVOKE ALL ON FUNCTION api.set_active_waifu(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.set_active_waifu(bigint, bigint) TO waifu_bot;

-- Wallets, the coin ledger and the XP counters ----------------------------------------------------

-- One row per player who ever earned anything: coins, the giver's standing, and the XP
-- counters of the leaderboards (updated in the transaction that gains the XP).
CREATE TABLE game.wallets (
    telegram_id bigint PRIMARY KEY REFERENCES game.players ON DELETE CASCADE,
    coins bigint NOT NULL DEFAULT 0 CHECK (coins >= 0),
    standing bigint NOT NULL DEFAULT 0 CHECK (standing >= 0),
    xp_total bigint NOT NULL DEFAULT 0 CHECK (xp_total >= 0),
    week_start timestamptz,
    xp_week bigint NOT NULL DEFAULT 0 CHECK (xp_week >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE game.wallets IS
$$A player's coins (equal to the sum of their rows in game.coin_ledger), their standing as a giver (loyalty their
gifts gave other players' waifus), and the leaderboards' XP: all-time, and in the week starting week_start
(Monday 00:00 UTC; a row of an earlier week counts 0 this week).$$;
CREATE INDEX wallets_xp_total_idx ON game.wallets (xp_total DESC, telegram_id) WHERE xp_total > 0;
CREATE INDEX wallets_xp_week_idx ON game.wallets (week_start, xp_week DESC, telegram_id) WHERE xp_week > 0;
GRANT SELECT ON game.wallets TO waifu_ops;

CREATE TABLE game.coin_ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    telegram_id bigint NOT NULL REFERENCES game.players ON DELETE CASCADE,
    at timestamptz NOT NULL,
    delta bigint NOT NULL CHECK (delta <> 0),
    balance bigint NOT NULL CHECK (balance >= 0),
    reason text NOT NULL CHECK (reason IN ('event', 'daily', 'purchase', 'group_event', 'correction')),
    ref text NOT NULL
);
COMMENT ON TABLE game.coin_ledger IS
$$Every change of a player's coins, written with it: delta, the balance after it, why (event, daily, purchase,
group_event, correction) and what (the request key, or the group event's id). Kept whole: the sum of a
player's deltas is their wallet.$$;
CREATE INDEX coin_ledger_player_idx ON game.coin_ledger (telegram_id, id);
GRANT SELECT ON game.coin_ledger TO waifu_ops;

-- Backfill: what was earned before coins existed counts for the all-time board; the week's
-- XP from this week's participations.
INSERT INTO game.wallets (telegram_id, xp_total, week_start, xp_week)
SELECT p.telegram_id,
       coalesce((SELECT sum((w.dynamic ->> 'xp')::bigint) FROM game.waifus AS w WHERE w.owner_id = p.telegram_id), 0),
       game.ledger_week(now()),
       coalesce((SELECT sum(x.xp_gained) FROM game.participations AS x
                 WHERE x.telegram_id = p.telegram_id AND x.participated_at >= game.ledger_week(now())), 0)
FROM game.players AS p;

-- The one write of what a player earns: coins (and their ledger row) and XP counters, one
-- upsert of the wallet. Returns the coins after it. `reason`/`ref` describe the ledger row.
CREATE FUNCTION game.earn(telegram_id bigint, coins bigint, xp bigint, reason text, ref text, at timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    week timestamptz := game.ledger_week(earn.at);
    balance bigint;
BEGIN
    -- An UPDATE of the wallet a player who earned before has (an upsert every time probes
    -- the index for an insert first); a first earning creates it empty, then updates it.
    LOOP
        UPDATE game.wallets AS w
        SET coins = w.coins + earn.coins,
            xp_total = w.xp_total + earn.xp,
            -- A new week starts from 0; XP dated before the stored week counts all-time only.
            xp_week = CASE WHEN w.week_start IS NULL OR w.week_start < week THEN earn.xp
                           WHEN w.week_start = week THEN w.xp_week + earn.xp
                           ELSE w.xp_week END,
            week_start = greatest(w.week_start, week),
            updated_at = earn.at
        WHERE w.telegram_id = earn.telegram_id
        RETURNING w.coins INTO balance;
        EXIT WHEN FOUND;
        INSERT INTO game.wallets (telegram_id) VALUES (earn.telegram_id) ON CONFLICT ON CONSTRAINT wallets_pkey DO NOTHING;
    END LOOP;
    IF earn.coins <> 0 THEN
        INSERT INTO game.coin_ledger (telegram_id, at, delta, balance, reason, ref)
        VALUES (earn.telegram_id, earn.at, earn.coins, balance, earn.reason, left(earn.ref, 128));
    END IF;
    RETURN balance;
END
$$;
COMMENT ON FUNCTION game.earn(bigint, bigint, bigint, text, text, timestamptz) IS
    'Add coins (with their ledger row) and XP (all-time and weekly counters) to a player''s wallet; returns the coins.';
REVOKE ALL ON FUNCTION game.earn(bigint, bigint, bigint, text, text, timestamptz) FROM PUBLIC;

-- The wallet of a player, created empty if missing, locked for the rest of the transaction.
CREATE FUNCTION game.lock_wallet(telegram_id bigint) RETURNS game.wallets
    LANGUAGE plpgsql
AS $$
DECLARE
    w game.wallets;
BEGIN
    SELECT * INTO w FROM game.wallets AS x WHERE x.telegram_id = lock_wallet.telegram_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO game.wallets AS x (telegram_id) VALUES (lock_wallet.telegram_id)
        ON CONFLICT ON CONSTRAINT wallets_pkey DO NOTHING;
        SELECT * INTO w FROM game.wallets AS x WHERE x.telegram_id = lock_wallet.telegram_id FOR UPDATE;
    END IF;
    RETURN w;
END
$$;
COMMENT ON FUNCTION game.lock_wallet(bigint) IS 'A player''s wallet row (created empty if missing), locked FOR UPDATE.';
REVOKE ALL ON FUNCTION game.lock_wallet(bigint) FROM PUBLIC;

CREATE FUNCTION ops.adjust_coins(telegram_id bigint, delta integer, reason text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wallet game.wallets;
    balance bigint;
BEGIN
    PERFORM game.require_player(adjust_coins.telegram_id);
    IF adjust_coins.delta IS NULL OR adjust_coins.delta = 0 OR abs(adjust_coins.delta::bigint) > 1000000 THEN
        PERFORM game.invalid_argument('delta', adjust_coins.delta::text, 'delta must be -1000000..1000000, not 0');
    END IF;
    PERFORM game.check_text('reason', adjust_coins.reason, 200, true);
    wallet := game.lock_wallet(adjust_coins.telegram_id);
    IF wallet.coins + adjust_coins.delta < 0 THEN
        PERFORM game.refuse('WF009', format('the player has %s coins, fewer than %s', wallet.coins, -adjust_coins.delta),
                            jsonb_build_object('coins_needed', -adjust_coins.delta, 'coins', wallet.coins));
    END IF;
    UPDATE game.wallets AS x SET coins = x.coins + adjust_coins.delta, updated_at = now()
    WHERE x.telegram_id = adjust_coins.telegram_id
    RETURNING x.coins INTO balance;
    INSERT INTO game.coin_ledger (telegram_id, at, delta, balance, reason, ref)
    VALUES (adjust_coins.telegram_id, now(), adjust_coins.delta, balance, 'correction', adjust_coins.reason);
    RETURN jsonb_build_object('telegram_id', adjust_coins.telegram_id, 'delta', adjust_coins.delta, 'coins', balance);
END
$$;
COMMENT ON FUNCTION ops.adjust_coins(bigint, integer, text) IS
$$Give (delta > 0) or take (delta < 0) coins by hand, recorded in game.coin_ledger as a correction with the reason.
Example: SELECT ops.adjust_coins(42, 100, 'refund: shop outage');
Returns {telegram_id, delta, coins}. Errors: WF005 not registered; WF006 delta 0 or beyond 1000000, reason missing
or over 200 characters; WF009 the player has fewer coins than taken.$$;
REVOKE ALL ON FUNCTION ops.adjust_coins(bigint, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.adjust_coins(bigint, integer, text) TO waifu_ops;

-- Events pay coins --------------------------------------------------------------------------------

-- Added bare, then filled and constrained: PostgreSQL 15.20 refuses ADD COLUMN ... DEFAULT on a
-- table whose row type a SQL-body function uses (game.apply_event, event_is_open and
-- cooldown_ends_at take a game.events), where 15.18 accepted it.
ALTER TABLE game.events ADD COLUMN coin_reward integer;
UPDATE game.events SET coin_reward = 0;
ALTER TABLE game.events ALTER COLUMN coin_reward SET DEFAULT 0, ALTER COLUMN coin_reward SET NOT NULL,
    ADD CONSTRAINT events_coin_reward_check CHECK (coin_reward BETWEEN 0 AND 1000000);
COMMENT ON COLUMN game.events.coin_reward IS 'Coins a participation pays into the player''s wallet (ops.set_event_coins).';
UPDATE game.events AS e SET coin_reward = r.coins
FROM (VALUES ('walk', 2), ('cafe', 5), ('training', 8), ('movie', 6), ('gift', 1)) AS r(code, coins)
WHERE e.code = r.code;

ALTER TABLE game.participations ADD COLUMN coins_gained integer NOT NULL DEFAULT 0;

CREATE FUNCTION ops.set_event_coins(event_code text, coins integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e game.events;
BEGIN
    IF set_event_coins.coins IS NULL OR set_event_coins.coins NOT BETWEEN 0 AND 1000000 THEN
        PERFORM game.invalid_argument('coins', set_event_coins.coins::text, 'coins must be between 0 and 1000000');
    END IF;
    UPDATE game.events AS x SET coin_reward = set_event_coins.coins, updated_at = now()
    WHERE x.code = set_event_coins.event_code
    RETURNING x.* INTO e;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event "%" does not exist', left(set_event_coins.event_code, 64)
            USING ERRCODE = 'WF002',
                  DETAIL = jsonb_build_object('event_code', left(set_event_coins.event_code, 64))::text;
    END IF;
    RETURN to_jsonb(e);
END
$$;
COMMENT ON FUNCTION ops.set_event_coins(text, integer) IS
$$Set the coins a participation in an event pays (0..1000000). Returns the event.
Example: SELECT ops.set_event_coins('walk', 3);
Errors: WF002 unknown event; WF006 coins out of range.$$;
REVOKE ALL ON FUNCTION ops.set_event_coins(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_event_coins(text, integer) TO waifu_ops;

CREATE OR REPLACE FUNCTION game.participation_json(w game.waifus, dynamic jsonb, at timestamptz,
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

-- The daily reward pays coins ---------------------------------------------------------------------

CREATE FUNCTION game.daily_coins(streak integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 10 + 5 * (least(greatest(streak, 1), 7) - 1);
COMMENT ON FUNCTION game.daily_coins(integer) IS
    'Coins of the daily reward on a day of the streak: 10 on day 1, +5 a day, 40 from day 7 on.';
REVOKE ALL ON FUNCTION game.daily_coins(integer) FROM PUBLIC;

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
                                          'loyalty', reward.loyalty,
                                          'coins', game.daily_coins(next_streak)));  -- 0013 (added)
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
    coins integer;  -- 0013 (added)
    waifus jsonb;
    xp_gained bigint;  -- 0013 (added)
    balance bigint;  -- 0013 (added)
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
    coins := game.daily_coins(streak);  -- 0013 (added)
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
           ORDER BY (c.waifu).id),
           sum(((c.waifu).dynamic ->> 'xp')::bigint - (c.before ->> 'xp')::bigint)::bigint  -- 0013 (added)
    INTO waifus, xp_gained  -- 0013: xp_gained
    FROM changed AS c;

    -- 0013 (added): the wallet after the waifus (the lock order): the coins with their
    -- ledger row, the XP of every waifu for the leaderboards.
    balance := game.earn(p.telegram_id, coins, xp_gained, 'daily', claim_daily.request_key, at);

    UPDATE game.players AS x SET daily_streak = streak, daily_last = today, daily_last_at = at
    WHERE x.telegram_id = p.telegram_id
    RETURNING x.* INTO p;
    result := jsonb_build_object(
        'telegram_id', p.telegram_id,
        'day', today,
        'streak', streak,
        'reward', jsonb_build_object('energy', reward.energy, 'xp', reward.xp, 'mood', reward.mood,
                                     'loyalty', reward.loyalty, 'coins', coins),  -- 0013: 'coins'
        'waifus', waifus,
        'coins', balance,  -- 0013 (added)
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
(game.daily_rewards: energy up to the cap, XP, mood and loyalty up to the cap), and the wallet the day's
coins (game.daily_coins: 10 on day 1 up to 40 from day 7), recorded in game.coin_ledger.
One claim per calendar day in the player's timezone (UTC unless they set one), and at least 20 hours
(game.daily_hours()) after the previous claim whatever the timezone does. The streak goes on after a
claim the day before and starts again at 1 after a missed day.
request_key: the same key again returns the recorded result ("replayed": true), any day.
Returns {telegram_id, day, streak, reward: {energy, xp, mood, loyalty, coins}, waifus: [api.waifu_stats
shape + gained: {energy, xp, mood, loyalty}], coins (the wallet after), claimed_at, next_at, request_key, replayed}.
Errors: WF004 the player has no waifu; WF005 not registered; WF006 missing/too long request_key or
a `now` this caller may not choose; WF008 not yet {limit: "daily", available_at, day, streak, timezone}.$$;

-- The shop ----------------------------------------------------------------------------------------

CREATE TABLE game.items (
    code text PRIMARY KEY CHECK (code ~ '^[a-z0-9_]{1,32}$'),
    name text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 64),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    price integer NOT NULL CHECK (price BETWEEN 1 AND 1000000),
    mood_delta integer NOT NULL DEFAULT 0 CHECK (mood_delta BETWEEN -game.max_stat() AND game.max_stat()),
    loyalty_delta integer NOT NULL DEFAULT 0 CHECK (loyalty_delta BETWEEN -game.max_stat() AND game.max_stat()),
    energy_delta integer NOT NULL DEFAULT 0 CHECK (energy_delta BETWEEN 0 AND game.max_energy()),
    cooldown interval NOT NULL DEFAULT '0' CHECK (cooldown BETWEEN interval '0' AND interval '7 days'),
    on_sale boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE game.items IS
$$The shop: items bought with coins and given to a waifu (effect on mood, loyalty, energy; cooldown per waifu and
item). Manage with ops.create_item / ops.set_item_translation / ops.stop_selling_item.$$;
GRANT SELECT ON game.items TO waifu_ops;

CREATE TABLE game.item_translations (
    item_code text NOT NULL REFERENCES game.items ON DELETE CASCADE,
    language text NOT NULL CHECK (language ~ '^[a-z]{2,3}$' AND language <> 'en'),
    name text NOT NULL CHECK (btrim(name) <> ''),
    description text CHECK (btrim(description) <> ''),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT item_translations_pkey PRIMARY KEY (item_code, language)
);
COMMENT ON TABLE game.item_translations IS
    'Names and descriptions of shop items in languages other than English. Edit with ops.set_item_translation.';
GRANT SELECT ON game.item_translations TO waifu_ops;

CREATE TABLE game.inventory (
    telegram_id bigint NOT NULL REFERENCES game.players ON DELETE CASCADE,
    item_code text NOT NULL REFERENCES game.items,
    quantity integer NOT NULL CHECK (quantity >= 0),
    CONSTRAINT inventory_pkey PRIMARY KEY (telegram_id, item_code)
);
COMMENT ON TABLE game.inventory IS 'Items a player owns (bought, not yet given).';
GRANT SELECT ON game.inventory TO waifu_ops;

-- Purchases and gifts: the ledger of the shop and the record of their request keys.
CREATE TABLE game.purchases (
    telegram_id bigint NOT NULL REFERENCES game.players ON DELETE CASCADE,
    request_key text NOT NULL,
    item_code text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    coins_spent bigint NOT NULL CHECK (coins_spent > 0),
    bought_at timestamptz NOT NULL,
    result jsonb NOT NULL,
    CONSTRAINT purchases_pkey PRIMARY KEY (telegram_id, request_key)
);
COMMENT ON TABLE game.purchases IS 'Every purchase, keyed by the player''s request key (a retry is answered from here).';
CREATE INDEX purchases_at_brin ON game.purchases USING brin (bought_at);
GRANT SELECT ON game.purchases TO waifu_ops;

CREATE TABLE game.gifts (
    giver_id bigint NOT NULL REFERENCES game.players ON DELETE CASCADE,
    request_key text NOT NULL,
    waifu_id bigint NOT NULL REFERENCES game.waifus ON DELETE CASCADE,
    owner_id bigint NOT NULL,
    item_code text NOT NULL,
    chat_id bigint,
    given_at timestamptz NOT NULL,
    mood_change integer NOT NULL,
    loyalty_change integer NOT NULL,
    energy_change integer NOT NULL,
    result jsonb NOT NULL,
    CONSTRAINT gifts_pkey PRIMARY KEY (giver_id, request_key)
);
COMMENT ON TABLE game.gifts IS
    'Every gift given, keyed by the giver''s request key; changes as applied to the waifu (after clamping).';
CREATE INDEX gifts_waifu_idx ON game.gifts (waifu_id, given_at);
GRANT SELECT ON game.gifts TO waifu_ops;

CREATE FUNCTION ops.create_item(code text, name text, price integer, mood_delta integer, loyalty_delta integer,
                                energy_delta integer, cooldown interval, description text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    i game.items;
BEGIN
    IF create_item.code IS NULL OR create_item.code !~ '^[a-z0-9_]{1,32}$' THEN
        PERFORM game.invalid_argument('code', create_item.code, 'code must be 1-32 characters a-z, 0-9, _');
    END IF;
    PERFORM game.check_text('name', create_item.name, 64, true);
    PERFORM game.check_text('description', create_item.description, 500, false);
    IF create_item.price IS NULL OR create_item.price NOT BETWEEN 1 AND 1000000 THEN
        PERFORM game.invalid_argument('price', create_item.price::text, 'price must be between 1 and 1000000 coins');
    END IF;
    IF create_item.mood_delta IS NULL OR create_item.mood_delta NOT BETWEEN -game.max_stat() AND game.max_stat() THEN
        PERFORM game.invalid_argument('mood_delta', create_item.mood_delta::text,
            format('mood_delta must be between %s and %s', -game.max_stat(), game.max_stat()));
    END IF;
    IF create_item.loyalty_delta IS NULL
       OR create_item.loyalty_delta NOT BETWEEN -game.max_stat() AND game.max_stat() THEN
        PERFORM game.invalid_argument('loyalty_delta', create_item.loyalty_delta::text,
            format('loyalty_delta must be between %s and %s', -game.max_stat(), game.max_stat()));
    END IF;
    IF create_item.energy_delta IS NULL OR create_item.energy_delta NOT BETWEEN 0 AND game.max_energy() THEN
        PERFORM game.invalid_argument('energy_delta', create_item.energy_delta::text,
            format('energy_delta must be between 0 and %s', game.max_energy()));
    END IF;
    IF create_item.cooldown IS NULL OR NOT create_item.cooldown BETWEEN interval '0' AND interval '7 days' THEN
        PERFORM game.invalid_argument('cooldown', create_item.cooldown::text,
            'cooldown must be between 0 and 7 days');
    END IF;
    INSERT INTO game.items AS x (code, name, description, price, mood_delta, loyalty_delta, energy_delta, cooldown)
    VALUES (create_item.code, create_item.name, coalesce(create_item.description, ''), create_item.price,
            create_item.mood_delta, create_item.loyalty_delta, create_item.energy_delta, create_item.cooldown)
    ON CONFLICT ON CONSTRAINT items_pkey DO UPDATE
        SET name = excluded.name, description = excluded.description, price = excluded.price,
            mood_delta = excluded.mood_delta, loyalty_delta = excluded.loyalty_delta,
            energy_delta = excluded.energy_delta, cooldown = excluded.cooldown, on_sale = true, updated_at = now()
    RETURNING x.* INTO i;
    RETURN to_jsonb(i);
END
$$;
COMMENT ON FUNCTION ops.create_item(text, text, integer, integer, integer, integer, interval, text) IS
$$Create or change a shop item (upsert; puts it on sale). code: 1-32 of a-z, 0-9, _; name (English): 1-64
characters; price: 1..1000000 coins; mood_delta, loyalty_delta: -100..100; energy_delta: 0..100; cooldown:
0..7 days between two gifts of this item to one waifu; description: up to 500 characters (NULL: none).
Example: SELECT ops.create_item('flowers', 'Flowers', 20, 8, 2, 0, '1 hour', 'A small bouquet.');
Returns the item. Errors: WF006 invalid argument (DETAIL names it).$$;
REVOKE ALL ON FUNCTION ops.create_item(text, text, integer, integer, integer, integer, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.create_item(text, text, integer, integer, integer, integer, interval, text) TO waifu_ops;

CREATE FUNCTION game.item_not_found(item_code text) RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM game.refuse('WF010', format('item "%s" is not in the shop', left(item_not_found.item_code, 64)),
                        jsonb_build_object('item_code', left(item_not_found.item_code, 64)));
END
$$;
COMMENT ON FUNCTION game.item_not_found(text) IS 'Raises WF010: no such item, or not on sale.';
REVOKE ALL ON FUNCTION game.item_not_found(text) FROM PUBLIC;

CREATE FUNCTION ops.stop_selling_item(code text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    i game.items;
BEGIN
    UPDATE game.items AS x SET on_sale = false, updated_at = now() WHERE x.code = stop_selling_item.code
    RETURNING x.* INTO i;
    IF NOT FOUND THEN
        PERFORM game.item_not_found(stop_selling_item.code);
    END IF;
    RETURN to_jsonb(i);
END
$$;
COMMENT ON FUNCTION ops.stop_selling_item(text) IS
$$Take an item out of the shop (ops.create_item puts it back). Items already bought can still be given.
Errors: WF010 unknown item.$$;
REVOKE ALL ON FUNCTION ops.stop_selling_item(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.stop_selling_item(text) TO waifu_ops;

CREATE FUNCTION ops.set_item_translation(item_code text, language text, name text, description text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r game.item_translations;
BEGIN
    PERFORM game.check_language(set_item_translation.language);
    PERFORM game.check_text('name', set_item_translation.name, 64, true);
    PERFORM game.check_text('description', set_item_translation.description, 500, false);
    IF NOT EXISTS (SELECT FROM game.items AS i WHERE i.code = set_item_translation.item_code) THEN
        PERFORM game.item_not_found(set_item_translation.item_code);
    END IF;
    INSERT INTO game.item_translations AS tr (item_code, language, name, description)
    VALUES (set_item_translation.item_code, set_item_translation.language, set_item_translation.name,
            set_item_translation.description)
    ON CONFLICT ON CONSTRAINT item_translations_pkey DO UPDATE
        SET name = excluded.name, description = excluded.description, updated_at = now()
    RETURNING tr.* INTO r;
    RETURN to_jsonb(r);
END
$$;
COMMENT ON FUNCTION ops.set_item_translation(text, text, text, text) IS
$$Add or change a shop item's name and description in a language (upsert): language ru (English is the item
row itself); name 1-64 characters; description up to 500 (NULL: the English one is shown).
Example: SELECT ops.set_item_translation('flowers', 'ru', 'Цветы', 'Маленький букет.');
Errors: WF006 invalid argument; WF010 unknown item.$$;
REVOKE ALL ON FUNCTION ops.set_item_translation(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_item_translation(text, text, text, text) TO waifu_ops;

INSERT INTO game.items (code, name, description, price, mood_delta, loyalty_delta, energy_delta, cooldown) VALUES
    ('flowers',   'Flowers',      'A small bouquet from the corner shop.',           20,  8, 2,  0, '1 hour'),
    ('chocolate', 'Chocolate',    'Sweet, and good for a tired afternoon.',          15,  4, 1, 15, '30 minutes'),
    ('teddy',     'Teddy bear',   'Soft, fluffy and impossible to say no to.',       60, 12, 6,  0, '4 hours'),
    ('necklace',  'Necklace',     'A silver pendant: something to remember you by.', 200, 10, 15, 0, '1 day');
INSERT INTO game.item_translations (item_code, language, name, description) VALUES
    ('flowers',   'ru', 'Цветы',           'Маленький букет из лавки на углу.'),
    ('chocolate', 'ru', 'Шоколад',         'Сладко и бодрит в усталый день.'),
    ('teddy',     'ru', 'Плюшевый мишка',  'Мягкий, пушистый, перед ним не устоять.'),
    ('necklace',  'ru', 'Кулон',           'Серебряный кулон на память о тебе.');

-- An item in the reader's language.
CREATE FUNCTION game.item_json(i game.items, language text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    tr game.item_translations;
BEGIN
    IF item_json.language IS DISTINCT FROM 'en' THEN
        SELECT * INTO tr FROM game.item_translations AS x
        WHERE x.item_code = item_json.i.code AND x.language = item_json.language;
    END IF;
    RETURN jsonb_build_object(
        'code', item_json.i.code, 'name', coalesce(tr.name, item_json.i.name),
        'description', coalesce(tr.description, item_json.i.description), 'price', item_json.i.price,
        'mood', item_json.i.mood_delta, 'loyalty', item_json.i.loyalty_delta, 'energy', item_json.i.energy_delta,
        'cooldown_seconds', extract(epoch FROM item_json.i.cooldown)::integer, 'on_sale', item_json.i.on_sale);
END
$$;
COMMENT ON FUNCTION game.item_json(game.items, text) IS 'A shop item as the api returns it, named in `language`.';
REVOKE ALL ON FUNCTION game.item_json(game.items, text) FROM PUBLIC;

CREATE FUNCTION api.shop(telegram_id bigint) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p game.players := game.require_player(shop.telegram_id);
    reader text := game.effective_language(p.language, p.language_code);
BEGIN
    RETURN jsonb_build_object(
        'coins', coalesce((SELECT w.coins FROM game.wallets AS w WHERE w.telegram_id = p.telegram_id), 0),
        'items', coalesce((SELECT jsonb_agg(game.item_json(i, reader) ORDER BY i.price, i.code)
                           FROM game.items AS i WHERE i.on_sale), '[]'::jsonb));
END
$$;
COMMENT ON FUNCTION api.shop(bigint) IS
$$What the shop sells, in the player's language, and the player's coins.
Returns {coins, items: [{code, name, description, price, mood, loyalty, energy, cooldown_seconds, on_sale}]} by price.
Errors: WF005 not registered; WF006 bad id.$$;
REVOKE ALL ON FUNCTION api.shop(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.shop(bigint) TO waifu_bot, waifu_ops;

CREATE FUNCTION api.inventory(telegram_id bigint) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p game.players := game.require_player(inventory.telegram_id);
    reader text := game.effective_language(p.language, p.language_code);
    w game.wallets;
BEGIN
    SELECT * INTO w FROM game.wallets AS x WHERE x.telegram_id = p.telegram_id;
    RETURN jsonb_build_object(
        'telegram_id', p.telegram_id,
        'coins', coalesce(w.coins, 0),
        'standing', coalesce(w.standing, 0),
        'items', coalesce((SELECT jsonb_agg(game.item_json(i, reader) || jsonb_build_object('quantity', v.quantity)
                                            ORDER BY i.price, i.code)
                           FROM game.inventory AS v JOIN game.items AS i ON i.code = v.item_code
                           WHERE v.telegram_id = p.telegram_id AND v.quantity > 0), '[]'::jsonb));
END
$$;
COMMENT ON FUNCTION api.inventory(bigint) IS
$$The player's wallet and the items they own, in their language.
Returns {telegram_id, coins, standing, items: [item as api.shop + quantity]}.
Errors: WF005 not registered; WF006 bad id.$$;
REVOKE ALL ON FUNCTION api.inventory(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.inventory(bigint) TO waifu_bot, waifu_ops;

CREATE FUNCTION api.buy_item(telegram_id bigint, item_code text, request_key text, quantity integer DEFAULT 1,
                             now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(buy_item.now);
    p game.players;
    wallet game.wallets;
    prior game.purchases;
    i game.items;
    cost bigint;
    balance bigint;
    owned integer;
    result jsonb;
BEGIN
    PERFORM game.check_request_key(buy_item.request_key, true);
    PERFORM game.check_text('item_code', buy_item.item_code, 32, true);
    IF buy_item.quantity IS NULL OR buy_item.quantity NOT BETWEEN 1 AND 99 THEN
        PERFORM game.invalid_argument('quantity', buy_item.quantity::text, 'quantity must be between 1 and 99');
    END IF;
    p := game.require_player(buy_item.telegram_id);
    -- The wallet's row lock serialises the player's purchases and gifts: the coins checked
    -- below are the coins spent, and a concurrent retry of the same key waits here and then
    -- finds the purchase.
    wallet := game.lock_wallet(p.telegram_id);
    SELECT * INTO prior FROM game.purchases AS x
    WHERE x.telegram_id = p.telegram_id AND x.request_key = buy_item.request_key;
    IF FOUND THEN
        IF prior.item_code <> buy_item.item_code OR prior.quantity <> buy_item.quantity THEN
            PERFORM game.refuse('WF007', format('request key "%s" was already used for another action',
                                                left(buy_item.request_key, 128)),
                                jsonb_build_object('request_key', prior.request_key, 'item_code', prior.item_code,
                                                   'quantity', prior.quantity));
        END IF;
        RETURN prior.result || jsonb_build_object('replayed', true);
    END IF;

    SELECT * INTO i FROM game.items AS x WHERE x.code = buy_item.item_code AND x.on_sale;
    IF NOT FOUND THEN
        PERFORM game.item_not_found(buy_item.item_code);
    END IF;
    cost := i.price::bigint * buy_item.quantity;
    IF wallet.coins < cost THEN
        PERFORM game.refuse('WF009', format('not enough coins: %s costs %s, the player has %s', i.code, cost,
                                            wallet.coins),
                            jsonb_build_object('coins_needed', cost, 'coins', wallet.coins, 'item_code', i.code,
                                               'quantity', buy_item.quantity));
    END IF;

    UPDATE game.wallets AS x SET coins = x.coins - cost, updated_at = at
    WHERE x.telegram_id = p.telegram_id
    RETURNING x.coins INTO balance;
    INSERT INTO game.coin_ledger (telegram_id, at, delta, balance, reason, ref)
    VALUES (p.telegram_id, at, -cost, balance, 'purchase', buy_item.request_key);
    INSERT INTO game.inventory AS v (telegram_id, item_code, quantity)
    VALUES (p.telegram_id, i.code, buy_item.quantity)
    ON CONFLICT ON CONSTRAINT inventory_pkey DO UPDATE SET quantity = v.quantity + excluded.quantity
    RETURNING v.quantity INTO owned;
    result := jsonb_build_object(
        'telegram_id', p.telegram_id,
        'item', game.item_json(i, game.effective_language(p.language, p.language_code)),
        'quantity', buy_item.quantity,
        'coins_spent', cost,
        'coins', balance,
        'owned', owned,
        'bought_at', at,
        'request_key', buy_item.request_key,
        'replayed', false);
    INSERT INTO game.purchases (telegram_id, request_key, item_code, quantity, coins_spent, bought_at, result)
    VALUES (p.telegram_id, buy_item.request_key, i.code, buy_item.quantity, cost, at, result);
    RETURN result;
END
$$;
COMMENT ON FUNCTION api.buy_item(bigint, text, text, integer, timestamptz) IS
$$Buy `quantity` (1..99) of a shop item into the inventory: the coins are taken from the wallet and recorded in
game.coin_ledger - one transaction, the wallet row locked.
request_key: the same key again returns the recorded purchase ("replayed": true) and changes nothing.
Returns {telegram_id, item, quantity, coins_spent, coins (after), owned (this item, after), bought_at,
request_key, replayed}.
Errors: WF005 not registered; WF006 bad argument or a `now` the caller may not choose; WF007 key used for
another purchase; WF009 not enough coins {coins_needed, coins, item_code, quantity}; WF010 item unknown or not
on sale {item_code}.$$;
REVOKE ALL ON FUNCTION api.buy_item(bigint, text, text, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.buy_item(bigint, text, text, integer, timestamptz) TO waifu_bot;

-- Stats after a gift: mood and loyalty moved (clamped), energy up to the cap. Input
-- regenerated to the gift's moment; her energy clock is kept (as for the daily reward).
CREATE FUNCTION game.apply_item(dynamic jsonb, i game.items) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_set(jsonb_set(jsonb_set(dynamic,
    '{energy}', to_jsonb(least(game.max_energy(), (dynamic ->> 'energy')::integer + i.energy_delta))),
    '{mood}', to_jsonb(least(game.max_stat(), greatest(0, (dynamic ->> 'mood')::integer + i.mood_delta)))),
    '{loyalty}', to_jsonb(least(game.max_stat(), greatest(0, (dynamic ->> 'loyalty')::integer + i.loyalty_delta))));
COMMENT ON FUNCTION game.apply_item(jsonb, game.items) IS
    'Stats after receiving item i (input regenerated to the moment of the gift).';
REVOKE ALL ON FUNCTION game.apply_item(jsonb, game.items) FROM PUBLIC;

-- Group chats -------------------------------------------------------------------------------------

CREATE TABLE game.groups (
    chat_id bigint PRIMARY KEY CHECK (chat_id < 0),
    title text CHECK (length(title) <= 128),
    events_on boolean NOT NULL DEFAULT false,
    next_event_at timestamptz,
    registered_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE game.groups IS
    'Telegram group chats the bot is used in (chat ids are negative); events_on: an admin turned group events on.';
CREATE INDEX groups_next_event_idx ON game.groups (next_event_at) WHERE events_on;
GRANT SELECT ON game.groups TO waifu_ops;

CREATE TABLE game.group_members (
    chat_id bigint NOT NULL REFERENCES game.groups ON DELETE CASCADE,
    telegram_id bigint NOT NULL REFERENCES game.players ON DELETE CASCADE,
    joined_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT group_members_pkey PRIMARY KEY (chat_id, telegram_id)
);
COMMENT ON TABLE game.group_members IS
    'Players who used the bot in a group chat (api.register_group_member); last_seen_at is kept to the hour.';
CREATE INDEX group_members_player_idx ON game.group_members (telegram_id);
GRANT SELECT ON game.group_members TO waifu_ops;

CREATE FUNCTION game.check_chat_id(chat_id bigint) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF check_chat_id.chat_id IS NULL OR check_chat_id.chat_id >= 0 THEN
        PERFORM game.invalid_argument('chat_id', 'chat_id must be a group chat''s id (negative)',
                                      jsonb_build_object('value', check_chat_id.chat_id));
    END IF;
END
$$;
COMMENT ON FUNCTION game.check_chat_id(bigint) IS 'Raises WF006 unless chat_id is a group''s (negative, not NULL).';
REVOKE ALL ON FUNCTION game.check_chat_id(bigint) FROM PUBLIC;

-- WF012 unless the player is a member of the group.
CREATE FUNCTION game.require_member(chat_id bigint, telegram_id bigint) RETURNS void
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM game.group_members AS m
                   WHERE m.chat_id = require_member.chat_id AND m.telegram_id = require_member.telegram_id) THEN
        PERFORM game.refuse('WF012', format('player %s is not a member of group %s', require_member.telegram_id,
                                            require_member.chat_id),
                            jsonb_build_object('chat_id', require_member.chat_id,
                                               'telegram_id', require_member.telegram_id));
    END IF;
END
$$;
COMMENT ON FUNCTION game.require_member(bigint, bigint) IS
    'Raises WF012 unless the player has used the bot in that group (api.register_group_member).';
REVOKE ALL ON FUNCTION game.require_member(bigint, bigint) FROM PUBLIC;

CREATE FUNCTION api.register_group_member(chat_id bigint, telegram_id bigint, title text DEFAULT NULL,
                                          now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(register_group_member.now);
    g game.groups;
BEGIN
    PERFORM game.check_chat_id(register_group_member.chat_id);
    PERFORM game.require_player(register_group_member.telegram_id);
    PERFORM game.check_text('title', register_group_member.title, 128, false);
    INSERT INTO game.groups AS x (chat_id, title, registered_at, updated_at)
    VALUES (register_group_member.chat_id, register_group_member.title, at, at)
    ON CONFLICT ON CONSTRAINT groups_pkey DO NOTHING;
    -- Written only when something changed: the bot calls this on every group update.
    UPDATE game.groups AS x SET title = register_group_member.title, updated_at = at
    WHERE x.chat_id = register_group_member.chat_id AND register_group_member.title IS NOT NULL
      AND x.title IS DISTINCT FROM register_group_member.title;
    INSERT INTO game.group_members AS m (chat_id, telegram_id, joined_at, last_seen_at)
    VALUES (register_group_member.chat_id, register_group_member.telegram_id, at, at)
    ON CONFLICT ON CONSTRAINT group_members_pkey DO UPDATE SET last_seen_at = excluded.last_seen_at
        WHERE m.last_seen_at < excluded.last_seen_at - interval '1 hour';
    SELECT * INTO g FROM game.groups AS x WHERE x.chat_id = register_group_member.chat_id;
    RETURN jsonb_build_object(
        'chat_id', g.chat_id, 'title', g.title, 'events_on', g.events_on, 'next_event_at', g.next_event_at,
        'members', (SELECT count(*) FROM game.group_members AS m WHERE m.chat_id = g.chat_id));
END
$$;
COMMENT ON FUNCTION api.register_group_member(bigint, bigint, text, timestamptz) IS
$$Record that a registered player used the bot in a group chat (the bot calls it for every group update it
handles): the group is created on first use, the member added. Returns {chat_id, title, events_on,
next_event_at, members}.
Errors: WF005 player not registered; WF006 chat_id not a group's (negative), title over 128 characters, or a
`now` the caller may not choose.$$;
REVOKE ALL ON FUNCTION api.register_group_member(bigint, bigint, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.register_group_member(bigint, bigint, text, timestamptz) TO waifu_bot;

CREATE FUNCTION api.set_group_events(chat_id bigint, telegram_id bigint, enabled boolean, is_admin boolean,
                                     now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(set_group_events.now);
    g game.groups;
BEGIN
    PERFORM game.check_chat_id(set_group_events.chat_id);
    PERFORM game.require_player(set_group_events.telegram_id);
    IF set_group_events.enabled IS NULL THEN
        PERFORM game.invalid_argument('enabled', 'enabled must be true or false', '{}'::jsonb);
    END IF;
    PERFORM game.require_member(set_group_events.chat_id, set_group_events.telegram_id);
    -- The bot asks Telegram whether the caller administers the group; the database trusts
    -- that flag (it cannot ask Telegram) but refuses a call that says no.
    IF set_group_events.is_admin IS NOT TRUE THEN
        PERFORM game.refuse('WF014', 'only an administrator of the group may turn group events on or off',
                            jsonb_build_object('chat_id', set_group_events.chat_id,
                                               'telegram_id', set_group_events.telegram_id));
    END IF;
    UPDATE game.groups AS x
    SET events_on = set_group_events.enabled,
        next_event_at = CASE WHEN NOT set_group_events.enabled THEN NULL
                             WHEN x.events_on THEN x.next_event_at
                             -- The first event soon after opting in, not a whole period later.
                             ELSE at + interval '1 minute' END,
        updated_at = at
    WHERE x.chat_id = set_group_events.chat_id
    RETURNING x.* INTO g;
    RETURN jsonb_build_object('chat_id', g.chat_id, 'events_on', g.events_on, 'next_event_at', g.next_event_at);
END
$$;
COMMENT ON FUNCTION api.set_group_events(bigint, bigint, boolean, boolean, timestamptz) IS
$$Turn a group's events on or off (/group_events on|off). is_admin: the bot's answer from Telegram whether the
caller administers the group (the database trusts it). Turned on, the first event opens within a minute or two,
then one every game.economy.group_event_every. Returns {chat_id, events_on, next_event_at}.
Errors: WF005 not registered; WF006 bad argument; WF012 not a member of the group; WF014 not an administrator.$$;
REVOKE ALL ON FUNCTION api.set_group_events(bigint, bigint, boolean, boolean, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.set_group_events(bigint, bigint, boolean, boolean, timestamptz) TO waifu_bot;

-- Group events and messages to groups -------------------------------------------------------------

CREATE TABLE game.group_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id bigint NOT NULL REFERENCES game.groups ON DELETE CASCADE,
    opened_at timestamptz NOT NULL,
    closes_at timestamptz NOT NULL,
    pool integer NOT NULL CHECK (pool >= 0),
    paid_at timestamptz,
    participants integer NOT NULL DEFAULT 0 CHECK (participants >= 0),
    CHECK (closes_at > opened_at)
);
COMMENT ON TABLE game.group_events IS
$$Events of group chats: members join (api.join_group_event) until closes_at; then the job group-events shares
the pool of coins among them (paid_at).$$;
CREATE INDEX group_events_unpaid_idx ON game.group_events (closes_at) WHERE paid_at IS NULL;
CREATE INDEX group_events_chat_idx ON game.group_events (chat_id, id);
GRANT SELECT ON game.group_events TO waifu_ops;

CREATE TABLE game.group_event_participants (
    event_id bigint NOT NULL REFERENCES game.group_events ON DELETE CASCADE,
    telegram_id bigint NOT NULL REFERENCES game.players ON DELETE CASCADE,
    waifu_id bigint REFERENCES game.waifus ON DELETE SET NULL,
    joined_at timestamptz NOT NULL,
    coins integer,
    CONSTRAINT group_event_participants_pkey PRIMARY KEY (event_id, telegram_id)
);
COMMENT ON TABLE game.group_event_participants IS
    'Who joined a group event (once each), with which waifu, and the coins they were paid (NULL until paid).';
GRANT SELECT ON game.group_event_participants TO waifu_ops;

-- The outbox of messages to group chats (the bot's sender claims them within the shared
-- limit group_send, so that no group gets more than Telegram's 20 a minute).
CREATE TABLE game.group_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id bigint NOT NULL REFERENCES game.groups ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('group_event_open', 'group_event_result')),
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    available_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    claimed_by text,
    sent_at timestamptz,
    outcome text CHECK (outcome IN ('sent', 'failed', 'expired'))
);
COMMENT ON TABLE game.group_messages IS
$$Messages to group chats, written in the transaction that caused them (a group event opened or paid); claimed by
api.claim_group_messages within the shared limit group_send, finished by api.finish_group_messages.$$;
CREATE INDEX group_messages_queue_idx ON game.group_messages (id) WHERE sent_at IS NULL;
GRANT SELECT ON game.group_messages TO waifu_ops;

CREATE FUNCTION api.join_group_event(telegram_id bigint, event_id bigint, waifu_id bigint DEFAULT NULL,
                                     now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(join_group_event.now);
    ev game.group_events;
    chosen bigint;
    joined game.group_event_participants;
    replayed boolean := false;
BEGIN
    PERFORM game.check_id('event_id', join_group_event.event_id);
    PERFORM game.require_player(join_group_event.telegram_id);
    -- The event's row lock: joins of one event and its payout run one after the other, so
    -- nobody joins an event already paid.
    SELECT * INTO ev FROM game.group_events AS e WHERE e.id = join_group_event.event_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM game.refuse('WF013', format('group event %s does not exist', join_group_event.event_id),
                            jsonb_build_object('event_id', join_group_event.event_id));
    END IF;
    PERFORM game.require_member(ev.chat_id, join_group_event.telegram_id);
    SELECT * INTO joined FROM game.group_event_participants AS x
    WHERE x.event_id = ev.id AND x.telegram_id = join_group_event.telegram_id;
    IF FOUND THEN
        replayed := true;  -- a second tap: joined once
    ELSE
        IF ev.paid_at IS NOT NULL OR at >= ev.closes_at OR at < ev.opened_at THEN
            PERFORM game.refuse('WF013', format('group event %s is not open', ev.id),
                                jsonb_build_object('event_id', ev.id, 'chat_id', ev.chat_id, 'opened_at', ev.opened_at,
                                                   'closes_at', ev.closes_at));
        END IF;
        IF join_group_event.waifu_id IS NOT NULL THEN
            chosen := (game.require_waifu(join_group_event.waifu_id, join_group_event.telegram_id)).id;
        ELSE
            chosen := game.active_waifu(join_group_event.telegram_id);
            IF chosen IS NULL THEN
                RAISE EXCEPTION 'player % has no waifu to take part', join_group_event.telegram_id
                    USING ERRCODE = 'WF004',
                          DETAIL = jsonb_build_object('telegram_id', join_group_event.telegram_id, 'waifus', 0)::text;
            END IF;
        END IF;
        INSERT INTO game.group_event_participants (event_id, telegram_id, waifu_id, joined_at)
        VALUES (ev.id, join_group_event.telegram_id, chosen, at)
        RETURNING * INTO joined;
        UPDATE game.group_events AS e SET participants = e.participants + 1 WHERE e.id = ev.id RETURNING e.* INTO ev;
    END IF;
    RETURN jsonb_build_object('event_id', ev.id, 'chat_id', ev.chat_id, 'telegram_id', joined.telegram_id,
                              'waifu_id', joined.waifu_id, 'joined_at', joined.joined_at,
                              'participants', ev.participants, 'closes_at', ev.closes_at, 'pool', ev.pool,
                              'coins', joined.coins, 'replayed', replayed);
END
$$;
COMMENT ON FUNCTION api.join_group_event(bigint, bigint, bigint, timestamptz) IS
$$Join a group event (the button under its message) with a waifu (NULL: the one picked for events), before it
closes. Joining twice joins once: the second call answers "replayed": true, whenever it comes.
Returns {event_id, chat_id, telegram_id, waifu_id, joined_at, participants, closes_at, pool, coins (NULL until
paid), replayed}.
Errors: WF004 waifu not the player's, or no waifu; WF005 not registered; WF006 bad argument; WF012 not a member of
the event's group; WF013 no such event, or not open {event_id, chat_id, opened_at, closes_at}.$$;
REVOKE ALL ON FUNCTION api.join_group_event(bigint, bigint, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.join_group_event(bigint, bigint, bigint, timestamptz) TO waifu_bot;

-- One step of the group events at `at`: pay every event closed by then (the pool shared
-- equally, the remainder one coin each to the first to join), then open one for every
-- group whose next event is due. Granted to nobody; the job calls it at the server's time.
CREATE FUNCTION game.group_events_step(at timestamptz, OUT paid integer, OUT opened integer)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ev game.group_events;
    settings game.economy;
    n integer;
BEGIN
    SELECT * INTO settings FROM game.economy AS e;
    paid := 0;
    opened := 0;
    FOR ev IN
        SELECT * FROM game.group_events AS e WHERE e.paid_at IS NULL AND e.closes_at <= group_events_step.at
        ORDER BY e.id
        FOR UPDATE SKIP LOCKED  -- a join in progress: paid by the next run
    LOOP
        n := ev.participants;
        IF n > 0 THEN
            WITH shares AS (
                SELECT x.telegram_id,
                       ev.pool / n + CASE WHEN row_number() OVER (ORDER BY x.joined_at, x.telegram_id) <= ev.pool % n
                                          THEN 1 ELSE 0 END AS coins
                FROM game.group_event_participants AS x WHERE x.event_id = ev.id
            )
            UPDATE game.group_event_participants AS x SET coins = s.coins
            FROM shares AS s WHERE x.event_id = ev.id AND x.telegram_id = s.telegram_id;
            -- Wallets in id order (the lock order among players).
            PERFORM game.earn(x.telegram_id, x.coins, 0, 'group_event', 'group_event:' || ev.id, group_events_step.at)
            FROM game.group_event_participants AS x
            WHERE x.event_id = ev.id AND x.coins > 0
            ORDER BY x.telegram_id;
        END IF;
        UPDATE game.group_events AS e SET paid_at = group_events_step.at WHERE e.id = ev.id;
        INSERT INTO game.group_messages (chat_id, kind, payload, created_at, available_at)
        SELECT ev.chat_id, 'group_event_result',
               jsonb_build_object('event_id', ev.id, 'pool', ev.pool, 'participants', n,
                   'winners', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                            'telegram_id', x.telegram_id, 'name', coalesce(p.first_name, p.username),
                                            'coins', x.coins) ORDER BY x.coins DESC, x.joined_at)
                                        FROM game.group_event_participants AS x
                                        JOIN game.players AS p ON p.telegram_id = x.telegram_id
                                        WHERE x.event_id = ev.id), '[]'::jsonb)),
               group_events_step.at, group_events_step.at;
        paid := paid + 1;
    END LOOP;

    WITH due AS (
        UPDATE game.groups AS g
        SET next_event_at = greatest(g.next_event_at + settings.group_event_every,
                                     group_events_step.at + settings.group_event_window),
            updated_at = group_events_step.at
        WHERE g.events_on AND g.next_event_at <= group_events_step.at
          -- At most one event open per group.
          AND NOT EXISTS (SELECT FROM game.group_events AS e WHERE e.chat_id = g.chat_id AND e.paid_at IS NULL)
        RETURNING g.chat_id
    ), created AS (
        INSERT INTO game.group_events (chat_id, opened_at, closes_at, pool)
        SELECT d.chat_id, group_events_step.at, group_events_step.at + settings.group_event_window,
               settings.group_event_pool
        FROM due AS d
        RETURNING *
    ), messages AS (
        INSERT INTO game.group_messages (chat_id, kind, payload, created_at, available_at)
        SELECT c.chat_id, 'group_event_open',
               jsonb_build_object('event_id', c.id, 'closes_at', c.closes_at, 'pool', c.pool),
               group_events_step.at, group_events_step.at
        FROM created AS c
        RETURNING 1
    )
    SELECT count(*)::integer INTO opened FROM messages;
    IF paid + opened > 0 THEN
        PERFORM pg_notify('waifu_group_messages', (paid + opened)::text);
    END IF;
END
$$;
COMMENT ON FUNCTION game.group_events_step(timestamptz) IS
    'Pay the group events closed by `at` and open those due at `at` (with their messages to the groups).';
REVOKE ALL ON FUNCTION game.group_events_step(timestamptz) FROM PUBLIC;

CREATE FUNCTION game.group_events_job() RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    r := game.group_events_step(now());
    RETURN jsonb_build_object('paid', r.paid, 'opened', r.opened);
END
$$;
COMMENT ON FUNCTION game.group_events_job() IS
$$Group events at the server's time: pay those closed, open those due, for every group at once (pg_cron job
group-events, every minute). Returns {paid, opened}.$$;
REVOKE ALL ON FUNCTION game.group_events_job() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.group_events_job() TO waifu_cron, waifu_ops;

-- One job for every group, not one per group: its cost does not grow with the number of
-- groups' schedules (pg_cron runs each job in a worker of its own and logs each run: a job
-- per group would mean a connection and a history row per group a minute), opting in and
-- out is an UPDATE of one row instead of a cron.schedule by the bot (which would need rights
-- on pg_cron), and the groups' events are spread over the hours by when each group opted in.
DO $$
BEGIN
    PERFORM cron.schedule_in_database('group-events', '* * * * *', 'SELECT game.group_events_job()',
                                      current_database(), 'waifu_cron');
END
$$;

CREATE FUNCTION api.claim_group_messages(worker text, batch_size integer, lease_seconds integer,
                                         now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(claim_group_messages.now);
    m game.group_messages;
    claimed jsonb := '[]'::jsonb;
    refused_chats bigint[] := '{}'::bigint[];
BEGIN
    PERFORM game.check_text('worker', claim_group_messages.worker, 64, true);
    IF claim_group_messages.batch_size IS NULL OR claim_group_messages.batch_size NOT BETWEEN 1 AND 100 THEN
        PERFORM game.invalid_argument('batch_size', claim_group_messages.batch_size::text,
                                      'batch_size must be between 1 and 100');
    END IF;
    IF claim_group_messages.lease_seconds IS NULL OR claim_group_messages.lease_seconds NOT BETWEEN 1 AND 3600 THEN
        PERFORM game.invalid_argument('lease_seconds', claim_group_messages.lease_seconds::text,
                                      'lease_seconds must be between 1 and 3600');
    END IF;
    -- A message an hour old is no use: an event's window has long closed.
    UPDATE game.group_messages AS x SET sent_at = at, outcome = 'expired'
    WHERE x.sent_at IS NULL AND x.created_at < at - interval '1 hour';
    FOR m IN
        SELECT * FROM game.group_messages AS x
        WHERE x.sent_at IS NULL AND x.available_at <= at
        ORDER BY x.id
        LIMIT claim_group_messages.batch_size * 4
        FOR UPDATE SKIP LOCKED
    LOOP
        EXIT WHEN jsonb_array_length(claimed) >= claim_group_messages.batch_size;
        -- Telegram's 20 messages a minute per group, shared by every process and by the
        -- bot's replies in the group (bucket group_send): a message without a token waits.
        CONTINUE WHEN m.chat_id = ANY (refused_chats);
        IF game.take_token('group_send', m.chat_id::text) > 0 THEN
            refused_chats := refused_chats || m.chat_id;
            CONTINUE;
        END IF;
        UPDATE game.group_messages AS x
        SET claimed_by = claim_group_messages.worker, attempts = x.attempts + 1,
            available_at = at + make_interval(secs => claim_group_messages.lease_seconds)
        WHERE x.id = m.id
        RETURNING x.* INTO m;
        claimed := claimed || jsonb_build_object('id', m.id, 'chat_id', m.chat_id, 'kind', m.kind,
                                                 'payload', m.payload, 'created_at', m.created_at,
                                                 'attempts', m.attempts, 'lease_until', m.available_at);
    END LOOP;
    RETURN claimed;
END
$$;
COMMENT ON FUNCTION api.claim_group_messages(text, integer, integer, timestamptz) IS
$$Claim up to batch_size (1..100) due messages to group chats for this sender, each leased for lease_seconds
(1..3600): unfinished by then, it is claimed again. Each takes a token of the group's shared limit group_send
(Telegram's 20 a minute per group; the bot's replies in groups take from it too): a group without one waits.
Messages over an hour old end as expired. Concurrent senders never get the same row (SKIP LOCKED).
Returns [{id, chat_id, kind, payload, created_at, attempts, lease_until}].
Errors: WF006 worker missing, batch_size or lease_seconds out of range, or a `now` this caller may not choose.$$;
REVOKE ALL ON FUNCTION api.claim_group_messages(text, integer, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.claim_group_messages(text, integer, integer, timestamptz) TO waifu_bot;

CREATE FUNCTION api.finish_group_messages(worker text, ids bigint[], outcome text,
                                          retry_after_seconds integer DEFAULT NULL,
                                          now timestamptz DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(finish_group_messages.now);
    n integer;
BEGIN
    PERFORM game.check_text('worker', finish_group_messages.worker, 64, true);
    IF finish_group_messages.ids IS NULL OR cardinality(finish_group_messages.ids) > 1000 THEN
        PERFORM game.invalid_argument('ids', 'ids must be an array of at most 1000 ids', '{}'::jsonb);
    END IF;
    IF finish_group_messages.outcome IS NULL OR finish_group_messages.outcome NOT IN ('sent', 'failed', 'retry') THEN
        PERFORM game.invalid_argument('outcome', finish_group_messages.outcome, 'outcome must be sent, failed or retry');
    END IF;
    IF finish_group_messages.retry_after_seconds NOT BETWEEN 0 AND 3600 THEN
        PERFORM game.invalid_argument('retry_after_seconds', finish_group_messages.retry_after_seconds::text,
                                      'retry_after_seconds must be between 0 and 3600');
    END IF;
    UPDATE game.group_messages AS x
    SET sent_at = CASE WHEN finish_group_messages.outcome = 'retry' THEN NULL ELSE at END,
        outcome = CASE WHEN finish_group_messages.outcome = 'retry' THEN NULL ELSE finish_group_messages.outcome END,
        available_at = CASE WHEN finish_group_messages.outcome = 'retry'
                            THEN at + make_interval(secs => coalesce(finish_group_messages.retry_after_seconds, 5))
                            ELSE x.available_at END
    WHERE x.id = ANY (finish_group_messages.ids) AND x.claimed_by = finish_group_messages.worker
      AND x.sent_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION api.finish_group_messages(text, bigint[], text, integer, timestamptz) IS
$$Finish group messages this sender claimed: sent, failed (for good), or retry (again after retry_after_seconds,
default 5). Rows claimed by another sender or already finished are left alone. Returns how many changed.
Errors: WF006 bad worker, ids (at most 1000), outcome or retry_after_seconds (0..3600), or a `now` this caller
may not choose.$$;
REVOKE ALL ON FUNCTION api.finish_group_messages(text, bigint[], text, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.finish_group_messages(text, bigint[], text, integer, timestamptz) TO waifu_bot;

-- Gifts -------------------------------------------------------------------------------------------

CREATE FUNCTION api.give_gift(telegram_id bigint, waifu_id bigint, item_code text, request_key text,
                              chat_id bigint DEFAULT NULL, now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(give_gift.now);
    giver game.players;
    w game.waifus;
    prior game.gifts;
    i game.items;
    wallet game.wallets;
    cooldown_end timestamptz;
    left_over integer;
    before jsonb;
    after jsonb;
    own boolean;
    standing bigint;
    result jsonb;
BEGIN
    PERFORM game.check_id('waifu_id', give_gift.waifu_id);
    PERFORM game.check_request_key(give_gift.request_key, true);
    PERFORM game.check_text('item_code', give_gift.item_code, 32, true);
    IF give_gift.chat_id IS NOT NULL THEN
        PERFORM game.check_chat_id(give_gift.chat_id);
    END IF;
    giver := game.require_player(give_gift.telegram_id);

    -- The waifu first (the lock order), then the giver's wallet: a retry of the same key
    -- waits on one of them and then finds the gift.
    SELECT * INTO w FROM game.waifus AS x WHERE x.id = give_gift.waifu_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM game.waifu_not_found(give_gift.waifu_id);
    END IF;
    own := w.owner_id = giver.telegram_id;
    IF NOT own THEN
        -- Another player's waifu only in a group chat where both are members; outside one,
        -- she is as unknown as a waifu that does not exist (no leak).
        IF give_gift.chat_id IS NULL THEN
            PERFORM game.waifu_not_found(give_gift.waifu_id);
        END IF;
        PERFORM game.require_member(give_gift.chat_id, giver.telegram_id);
        PERFORM game.require_member(give_gift.chat_id, w.owner_id);
    END IF;
    wallet := game.lock_wallet(giver.telegram_id);

    SELECT * INTO prior FROM game.gifts AS g
    WHERE g.giver_id = giver.telegram_id AND g.request_key = give_gift.request_key;
    IF FOUND THEN
        IF prior.waifu_id <> w.id OR prior.item_code <> give_gift.item_code THEN
            PERFORM game.refuse('WF007', format('request key "%s" was already used for another action',
                                                left(give_gift.request_key, 128)),
                                jsonb_build_object('request_key', prior.request_key, 'waifu_id', prior.waifu_id,
                                                   'item_code', prior.item_code));
        END IF;
        RETURN prior.result || jsonb_build_object('replayed', true);
    END IF;

    SELECT * INTO i FROM game.items AS x WHERE x.code = give_gift.item_code;
    IF NOT FOUND THEN
        PERFORM game.item_not_found(give_gift.item_code);
    END IF;
    cooldown_end := to_timestamp((w.last_played ->> ('item:' || i.code))::double precision) + i.cooldown;
    IF i.cooldown > interval '0' AND cooldown_end > at THEN
        PERFORM game.refuse('WF003', format('%s was given to this waifu too recently', i.code),
                            jsonb_build_object('item_code', i.code, 'available_at', cooldown_end,
                                               'remaining_seconds', ceil(extract(epoch FROM (cooldown_end - at)))::integer));
    END IF;
    UPDATE game.inventory AS v SET quantity = v.quantity - 1
    WHERE v.telegram_id = giver.telegram_id AND v.item_code = i.code AND v.quantity > 0
    RETURNING v.quantity INTO left_over;
    IF NOT FOUND THEN
        PERFORM game.refuse('WF011', format('the player has no %s to give', i.code),
                            jsonb_build_object('item_code', i.code, 'quantity', 0, 'price', i.price,
                                               'on_sale', i.on_sale));
    END IF;

    before := game.regen(w.dynamic, at);
    UPDATE game.waifus AS x
    SET dynamic = game.apply_item(before, i),
        last_played = x.last_played || jsonb_build_object('item:' || i.code, extract(epoch FROM at))
    WHERE x.id = w.id
    RETURNING x.* INTO w;
    after := w.dynamic;

    standing := wallet.standing;
    IF NOT own AND (after ->> 'loyalty')::integer > (before ->> 'loyalty')::integer THEN
        -- A gift to another's waifu moves the giver's standing (the loyalty it gave), and
        -- nothing of the receiver's but the item's effect on her.
        UPDATE game.wallets AS x
        SET standing = x.standing + ((after ->> 'loyalty')::integer - (before ->> 'loyalty')::integer), updated_at = at
        WHERE x.telegram_id = giver.telegram_id
        RETURNING x.standing INTO standing;
    END IF;

    result := game.stats_json(w, after, at) || jsonb_build_object(
        'giver_id', giver.telegram_id,
        'chat_id', give_gift.chat_id,
        'item', game.item_json(i, game.effective_language(giver.language, giver.language_code)),
        'changes', jsonb_build_object(
            'energy', (after ->> 'energy')::integer - (before ->> 'energy')::integer,
            'mood', (after ->> 'mood')::integer - (before ->> 'mood')::integer,
            'loyalty', (after ->> 'loyalty')::integer - (before ->> 'loyalty')::integer),
        'left', left_over,
        'standing', standing,
        'given_at', at,
        'request_key', give_gift.request_key,
        'replayed', false);
    INSERT INTO game.gifts (giver_id, request_key, waifu_id, owner_id, item_code, chat_id, given_at, mood_change,
                            loyalty_change, energy_change, result)
    VALUES (giver.telegram_id, give_gift.request_key, w.id, w.owner_id, i.code, give_gift.chat_id, at,
            (after ->> 'mood')::integer - (before ->> 'mood')::integer,
            (after ->> 'loyalty')::integer - (before ->> 'loyalty')::integer,
            (after ->> 'energy')::integer - (before ->> 'energy')::integer, result);
    RETURN result;
END
$$;
COMMENT ON FUNCTION api.give_gift(bigint, bigint, text, text, bigint, timestamptz) IS
$$Give an item from the inventory to a waifu: her mood and loyalty move by the item's effect (clamped), her energy
rises (up to the cap); one of that item per waifu per the item's cooldown. To another player's waifu only in a
group chat (chat_id) where both are members: it moves the giver's standing by the loyalty given, and nothing of
the receiver's beyond the item's effect. One transaction, the waifu's and the giver's wallet rows locked.
request_key: the same key again returns the recorded gift ("replayed": true) and changes nothing.
Returns the api.waifu_stats shape of the waifu plus {giver_id, chat_id, item, changes: {energy, mood, loyalty},
left (of this item), standing, given_at, request_key, replayed}.
Errors: WF003 this item was given to her too recently {item_code, available_at, remaining_seconds}; WF004 waifu
not found, or another's outside a group; WF005 not registered; WF006 bad argument or a `now` the caller may not
choose; WF007 key used for another action; WF010 unknown item; WF011 none in the inventory {item_code, quantity};
WF012 the giver or the waifu's owner is not a member of chat_id.$$;
REVOKE ALL ON FUNCTION api.give_gift(bigint, bigint, text, text, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.give_gift(bigint, bigint, text, text, bigint, timestamptz) TO waifu_bot;

-- Leaderboards ------------------------------------------------------------------------------------

-- Every 100th place of each board as of the last refresh: a rank below the first 1,000 is
-- read from here (within 100 places) instead of counting up to a million rows a call
-- (measured at 500,000 players: counting 10,000 index entries cost a call ~5 ms).
CREATE TABLE game.rank_steps (
    board text NOT NULL CHECK (board IN ('all', 'week')),
    place bigint NOT NULL,
    xp bigint NOT NULL,
    refreshed_at timestamptz NOT NULL,
    CONSTRAINT rank_steps_pkey PRIMARY KEY (board, place)
);
COMMENT ON TABLE game.rank_steps IS
    'XP at every game.rank_step()-th place of the all-time and weekly boards (job leaderboard-steps, every 5 minutes).';
CREATE INDEX rank_steps_xp_idx ON game.rank_steps (board, xp, place);
GRANT SELECT ON game.rank_steps TO waifu_ops;

CREATE FUNCTION game.rank_exact_limit() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 1000;
COMMENT ON FUNCTION game.rank_exact_limit() IS
    'Ranks up to this place are counted exactly; below it they are read from game.rank_steps.';
REVOKE ALL ON FUNCTION game.rank_exact_limit() FROM PUBLIC;

CREATE FUNCTION game.rank_step() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 100;
COMMENT ON FUNCTION game.rank_step() IS 'game.rank_steps keeps every rank_step()-th place: ranks below the exact limit are within it.';
REVOKE ALL ON FUNCTION game.rank_step() FROM PUBLIC;

CREATE FUNCTION game.refresh_rank_steps() RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    week timestamptz := game.ledger_week(now());
    steps integer;
BEGIN
    DELETE FROM game.rank_steps;
    INSERT INTO game.rank_steps (board, place, xp, refreshed_at)
    SELECT 'all', s.place, s.xp, now()
    FROM (SELECT w.xp_total AS xp, row_number() OVER (ORDER BY w.xp_total DESC) AS place
          FROM game.wallets AS w WHERE w.xp_total > 0) AS s
    WHERE s.place % game.rank_step() = 0
    UNION ALL
    SELECT 'week', s.place, s.xp, now()
    FROM (SELECT w.xp_week AS xp, row_number() OVER (ORDER BY w.xp_week DESC) AS place
          FROM game.wallets AS w WHERE w.week_start = week AND w.xp_week > 0) AS s
    WHERE s.place % game.rank_step() = 0;
    GET DIAGNOSTICS steps = ROW_COUNT;
    RETURN jsonb_build_object('steps', steps);
END
$$;
COMMENT ON FUNCTION game.refresh_rank_steps() IS
    'Recompute game.rank_steps from the wallets (pg_cron job leaderboard-steps, every 5 minutes). Returns {steps}.';
REVOKE ALL ON FUNCTION game.refresh_rank_steps() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.refresh_rank_steps() TO waifu_cron, waifu_ops;

DO $$
BEGIN
    PERFORM cron.schedule_in_database('leaderboard-steps', '*/5 * * * *', 'SELECT game.refresh_rank_steps()',
                                      current_database(), 'waifu_cron');
END
$$;

-- A player's place on a global board: 1 + the players with more XP, counted exactly up to
-- game.rank_exact_limit(), else from the steps (the place after the last step above).
CREATE FUNCTION game.global_rank(board text, xp bigint, week timestamptz, OUT place bigint, OUT exact boolean)
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    above bigint;
BEGIN
    IF global_rank.board = 'all' THEN
        SELECT count(*) INTO above FROM (SELECT FROM game.wallets AS w WHERE w.xp_total > global_rank.xp
                                         LIMIT game.rank_exact_limit()) AS s;
    ELSE
        SELECT count(*) INTO above FROM (SELECT FROM game.wallets AS w
                                         WHERE w.week_start = global_rank.week AND w.xp_week > global_rank.xp
                                         LIMIT game.rank_exact_limit()) AS s;
    END IF;
    exact := above < game.rank_exact_limit();
    IF NOT exact THEN
        -- The deepest step still above: the steps' XP falls as the place grows, so it is the
        -- last step with the least XP above `xp` (two look-ups on rank_steps_xp_idx).
        above := greatest(above, coalesce((
            SELECT max(r.place) FROM game.rank_steps AS r
            WHERE r.board = global_rank.board
              AND r.xp = (SELECT min(x.xp) FROM game.rank_steps AS x
                          WHERE x.board = global_rank.board AND x.xp > global_rank.xp)), 0));
    END IF;
    place := above + 1;
END
$$;
COMMENT ON FUNCTION game.global_rank(text, bigint, timestamptz) IS
    'Place on a global board for an XP total: exact within game.rank_exact_limit(), else from game.rank_steps.';
REVOKE ALL ON FUNCTION game.global_rank(text, bigint, timestamptz) FROM PUBLIC;

CREATE FUNCTION api.leaderboard(telegram_id bigint, board text, chat_id bigint DEFAULT NULL,
                                now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(leaderboard.now);
    week timestamptz := game.ledger_week(at);
    p game.players := game.require_player(leaderboard.telegram_id);
    mine game.wallets;
    my_xp bigint;
    top jsonb;
    my_place bigint;
    my_exact boolean;
BEGIN
    IF leaderboard.board IS NULL OR leaderboard.board NOT IN ('all', 'week') THEN
        PERFORM game.invalid_argument('board', leaderboard.board, 'board must be all or week');
    END IF;
    IF leaderboard.chat_id IS NOT NULL THEN
        PERFORM game.check_chat_id(leaderboard.chat_id);
        PERFORM game.require_member(leaderboard.chat_id, p.telegram_id);
    END IF;
    SELECT * INTO mine FROM game.wallets AS w WHERE w.telegram_id = p.telegram_id;
    my_xp := CASE WHEN leaderboard.board = 'all' THEN coalesce(mine.xp_total, 0)
                  WHEN mine.week_start = week THEN mine.xp_week ELSE 0 END;

    IF leaderboard.chat_id IS NULL THEN
        IF leaderboard.board = 'all' THEN
            SELECT jsonb_agg(jsonb_build_object('rank', t.rank, 'telegram_id', t.telegram_id, 'name', t.name,
                                                'xp', t.xp) ORDER BY t.xp DESC, t.telegram_id)
            INTO top
            FROM (SELECT w.telegram_id, w.xp_total AS xp, rank() OVER (ORDER BY w.xp_total DESC) AS rank,
                         left(coalesce(pl.first_name, pl.username, ''), 64) AS name
                  FROM (SELECT * FROM game.wallets AS x WHERE x.xp_total > 0
                        ORDER BY x.xp_total DESC, x.telegram_id LIMIT 10) AS w
                  JOIN game.players AS pl ON pl.telegram_id = w.telegram_id) AS t;
        ELSE
            SELECT jsonb_agg(jsonb_build_object('rank', t.rank, 'telegram_id', t.telegram_id, 'name', t.name,
                                                'xp', t.xp) ORDER BY t.xp DESC, t.telegram_id)
            INTO top
            FROM (SELECT w.telegram_id, w.xp_week AS xp, rank() OVER (ORDER BY w.xp_week DESC) AS rank,
                         left(coalesce(pl.first_name, pl.username, ''), 64) AS name
                  FROM (SELECT * FROM game.wallets AS x WHERE x.week_start = week AND x.xp_week > 0
                        ORDER BY x.xp_week DESC, x.telegram_id LIMIT 10) AS w
                  JOIN game.players AS pl ON pl.telegram_id = w.telegram_id) AS t;
        END IF;
        SELECT g.place, g.exact INTO my_place, my_exact FROM game.global_rank(leaderboard.board, my_xp, week) AS g;
    ELSE
        -- A group's board: its members only (a group has at most thousands: counted exactly).
        -- Each member's wallet by its key (a correlated look-up: the planner would otherwise
        -- hash the whole wallets table for a group of fifty).
        WITH members AS MATERIALIZED (
            SELECT m.telegram_id,
                   coalesce((SELECT CASE WHEN leaderboard.board = 'all' THEN w.xp_total
                                         WHEN w.week_start = week THEN w.xp_week ELSE 0 END
                             FROM game.wallets AS w WHERE w.telegram_id = m.telegram_id), 0) AS xp
            FROM game.group_members AS m
            WHERE m.chat_id = leaderboard.chat_id
        )
        SELECT (SELECT jsonb_agg(jsonb_build_object('rank', t.rank, 'telegram_id', t.telegram_id, 'name', t.name,
                                                    'xp', t.xp) ORDER BY t.xp DESC, t.telegram_id)
                FROM (SELECT x.telegram_id, x.xp, rank() OVER (ORDER BY x.xp DESC) AS rank,
                             left(coalesce(pl.first_name, pl.username, ''), 64) AS name
                      FROM (SELECT * FROM members AS y WHERE y.xp > 0 ORDER BY y.xp DESC, y.telegram_id LIMIT 10) AS x
                      JOIN game.players AS pl ON pl.telegram_id = x.telegram_id) AS t),
               (SELECT 1 + count(*) FILTER (WHERE y.xp > my_xp) FROM members AS y),
               true
        INTO top, my_place, my_exact;
    END IF;
    RETURN jsonb_build_object(
        'board', leaderboard.board,
        'chat_id', leaderboard.chat_id,
        'week_start', CASE WHEN leaderboard.board = 'week' THEN week END,
        'week_ends', CASE WHEN leaderboard.board = 'week' THEN week + interval '1 week' END,
        'top', coalesce(top, '[]'::jsonb),
        'me', jsonb_build_object('telegram_id', p.telegram_id, 'xp', my_xp, 'rank', my_place,
                                 'exact', my_exact, 'in_top', my_place <= 10 AND my_xp > 0));
END
$$;
COMMENT ON FUNCTION api.leaderboard(bigint, text, bigint, timestamptz) IS
$$The top 10 players by XP and the caller's own place. board: all (all-time XP) or week (XP gained since Monday
00:00 UTC). chat_id: a group's board (its members only; the caller must be one), NULL: everybody.
Ties share a rank. The own rank is exact up to place 1,000; below it, within 100 places as of the last
refresh of game.rank_steps (exact: false).
Returns {board, chat_id, week_start, week_ends, top: [{rank, telegram_id, name, xp}], me: {telegram_id, xp, rank,
exact, in_top}}.
Errors: WF005 not registered; WF006 bad board or chat_id, or a `now` the caller may not choose; WF012 not a
member of the group.$$;
REVOKE ALL ON FUNCTION api.leaderboard(bigint, text, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.leaderboard(bigint, text, bigint, timestamptz) TO waifu_bot, waifu_ops;

-- The player's profile with the wallet --------------------------------------------------------

CREATE OR REPLACE FUNCTION api.player_profile(telegram_id bigint, now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(player_profile.now);
    p game.players := game.require_player(player_profile.telegram_id);
    wallet game.wallets;
BEGIN
    SELECT * INTO wallet FROM game.wallets AS x WHERE x.telegram_id = p.telegram_id;
    RETURN jsonb_build_object(
        'telegram_id', p.telegram_id,
        'username', p.username,
        'first_name', p.first_name,
        'language_code', p.language_code,
        'language', game.effective_language(p.language, p.language_code),
        'registered_at', p.registered_at,
        'coins', coalesce(wallet.coins, 0),
        'standing', coalesce(wallet.standing, 0),
        'active_waifu_id', game.active_waifu(p.telegram_id),
        'waifus', coalesce((
            SELECT jsonb_agg(game.stats_json(w, game.regen(w.dynamic, at), at) ORDER BY w.id)
            FROM game.waifus AS w
            WHERE w.owner_id = p.telegram_id), '[]'::jsonb));
END
$$;
COMMENT ON FUNCTION api.player_profile(bigint, timestamptz) IS
$$The player and every waifu's stats (effective as of now).
Returns {telegram_id, username, first_name, language_code, language, registered_at, coins, standing,
active_waifu_id, waifus: [api.waifu_stats shape]}; language: what the player reads (en, ru), from the
setting or else from language_code (game.effective_language).
Errors: WF005 not registered; WF006 a `now` the caller may not choose.$$;

-- Operators ---------------------------------------------------------------------------------------

CREATE VIEW ops.items AS
SELECT i.code, i.name, i.price, i.mood_delta, i.loyalty_delta, i.energy_delta, i.cooldown, i.on_sale,
       (SELECT count(*) FROM game.purchases AS b WHERE b.item_code = i.code AND b.bought_at > now() - interval '24 hours')
           AS bought_24h,
       (SELECT count(*) FROM game.gifts AS g WHERE g.item_code = i.code AND g.given_at > now() - interval '24 hours')
           AS given_24h,
       (SELECT string_agg(t.language, ',' ORDER BY t.language) FROM game.item_translations AS t
        WHERE t.item_code = i.code) AS translated
FROM game.items AS i
ORDER BY i.price, i.code;
COMMENT ON VIEW ops.items IS 'The shop: items, effects, on sale or not, bought and given in 24 h, languages translated.';
GRANT SELECT ON ops.items TO waifu_ops;

CREATE VIEW ops.coins AS
SELECT (SELECT coalesce(sum(w.coins), 0) FROM game.wallets AS w) AS coins_held,
       (SELECT coalesce(sum(l.delta), 0) FROM game.coin_ledger AS l) AS ledger_sum,
       (SELECT count(*) FROM game.wallets AS w
        WHERE w.coins <> coalesce((SELECT sum(l.delta) FROM game.coin_ledger AS l
                                   WHERE l.telegram_id = w.telegram_id), 0)) AS wallets_off_ledger,
       (SELECT coalesce(sum(l.delta), 0) FROM game.coin_ledger AS l
        WHERE l.delta > 0 AND l.at > now() - interval '24 hours') AS earned_24h,
       (SELECT coalesce(-sum(l.delta), 0) FROM game.coin_ledger AS l
        WHERE l.delta < 0 AND l.at > now() - interval '24 hours') AS spent_24h;
COMMENT ON VIEW ops.coins IS
    'Coins held vs the coin ledger (wallets_off_ledger must be 0), earned and spent in 24 h. Reads every wallet.';
GRANT SELECT ON ops.coins TO waifu_ops;

CREATE VIEW ops.groups AS
SELECT g.chat_id, g.title, g.events_on, g.next_event_at,
       (SELECT count(*) FROM game.group_members AS m WHERE m.chat_id = g.chat_id) AS members,
       (SELECT count(*) FROM game.group_events AS e WHERE e.chat_id = g.chat_id) AS events,
       (SELECT count(*) FROM game.group_messages AS m WHERE m.chat_id = g.chat_id AND m.sent_at IS NULL)
           AS messages_waiting
FROM game.groups AS g
ORDER BY g.chat_id;
COMMENT ON VIEW ops.groups IS 'Group chats: members, events on or off, the next event, messages waiting to be sent.';
GRANT SELECT ON ops.groups TO waifu_ops;
