-- Extras of issue 19: the stat card's photo cache, groups' language, the stall rule for every
-- job, and a retention for the coin ledger.
--
-- * Stat card photos: the bot sends a waifu's card as a photo. The picture (her portrait, the
--   rarity's frame and word) never changes with her stats, so Telegram's file_id of its first
--   upload is kept here per (bot, template, language) with the rarity and the picture's design
--   (a digest the bot computes from what it draws): every bot process reuses it, and a changed
--   rarity or design is a miss (uploaded again, then replaced). The stats go in the caption,
--   read fresh each time (api.stat_card): a cached image can never show stale numbers.
-- * Groups speak a language (game.groups.language): set from the admin who turns group events
--   on, changed by an admin with /group_language; the group sender reads it
--   (api.group_languages) to write the groups' messages in it.
-- * ops.cron_jobs: `stalled` for every job, from one table of expectations
--   (game.cron_expectations), including group-events and leaderboard-steps of 0013.
-- * game.coin_ledger keeps game.config.ledger_retention like the event ledger: older rows of a
--   player are folded into one `opening` row (the sum of their deltas, the balance after the
--   last), so the sum of a player's deltas still equals their wallet (job coin-ledger-retention).
-- depends: 0013.game-depth

-- Stat card photos -------------------------------------------------------------------------------

CREATE TABLE game.card_photos (
    bot_id bigint NOT NULL CHECK (bot_id > 0),
    template_code text NOT NULL REFERENCES game.waifu_templates ON UPDATE CASCADE ON DELETE CASCADE,
    language text NOT NULL CHECK (language = ANY (game.languages())),
    rarity text NOT NULL CHECK (rarity IN ('common', 'rare', 'epic')),
    design text NOT NULL CHECK (design ~ '^[0-9a-f]{8,64}$'),
    file_id text NOT NULL CHECK (file_id ~ '^[A-Za-z0-9_-]{16,200}$'),
    cached_at timestamptz NOT NULL,
    CONSTRAINT card_photos_pkey PRIMARY KEY (bot_id, template_code, language)
);
COMMENT ON TABLE game.card_photos IS
$$Telegram file_ids of the stat card's picture (portrait, rarity frame and word: no stats), one per bot, template
and language, valid for the rarity and design stored with it. Written by api.remember_card_photo.$$;
GRANT SELECT ON game.card_photos TO waifu_ops;

-- Bots whose file_ids may be cached at once (a bot's file_ids are valid for that bot only);
-- ops.forget_card_photos makes room after a bot is retired.
CREATE FUNCTION game.card_photo_bots() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 8;
COMMENT ON FUNCTION game.card_photo_bots() IS 'How many bots'' card photos game.card_photos may hold (8).';
REVOKE ALL ON FUNCTION game.card_photo_bots() FROM PUBLIC;

CREATE FUNCTION api.stat_card(telegram_id bigint, waifu_id bigint, bot_id bigint, now timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(stat_card.now);
    p game.players := game.require_player(stat_card.telegram_id);
    w game.waifus;
    reader text := game.effective_language(p.language, p.language_code);
    t game.waifu_templates;
    photo game.card_photos;
BEGIN
    PERFORM game.check_id('bot_id', stat_card.bot_id);
    w := game.require_waifu(stat_card.waifu_id, stat_card.telegram_id);
    SELECT * INTO t FROM game.waifu_templates AS x WHERE x.code = w.template_code;
    SELECT * INTO photo FROM game.card_photos AS c
    WHERE c.bot_id = stat_card.bot_id AND c.template_code = w.template_code AND c.language = reader
      AND c.rarity = t.rarity;
    RETURN game.stats_json(w, game.regen(w.dynamic, at), at)
        || jsonb_build_object('rarity', t.rarity, 'language', reader,
                              'photo', CASE WHEN photo.file_id IS NULL THEN NULL
                                            ELSE jsonb_build_object('file_id', photo.file_id,
                                                                    'design', photo.design) END);
END
$$;
COMMENT ON FUNCTION api.stat_card(bigint, bigint, bigint, timestamptz) IS
$$A waifu's stats for her stat card (as api.player_waifu_stats) with her template's rarity, the player's language,
and the cached photo of the card's picture for this bot, language and rarity: {file_id, design}, or NULL.
The bot sends the photo by that file_id when `design` is what it would draw now, else uploads and calls
api.remember_card_photo. Errors: WF005 not registered; WF004 not this player's waifu; WF006 bad argument.$$;
REVOKE ALL ON FUNCTION api.stat_card(bigint, bigint, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.stat_card(bigint, bigint, bigint, timestamptz) TO waifu_bot, waifu_ops;

CREATE FUNCTION api.remember_card_photo(bot_id bigint, template_code text, language text, rarity text,
                                        design text, file_id text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known_rarity text;
    c game.card_photos;
BEGIN
    PERFORM game.check_id('bot_id', remember_card_photo.bot_id);
    PERFORM game.check_text('template_code', remember_card_photo.template_code, 32, true);
    SELECT t.rarity INTO known_rarity FROM game.waifu_templates AS t WHERE t.code = remember_card_photo.template_code;
    IF NOT FOUND THEN
        PERFORM game.invalid_argument('template_code', remember_card_photo.template_code, 'no such template');
    END IF;
    IF remember_card_photo.language IS NULL OR NOT remember_card_photo.language = ANY (game.languages()) THEN
        PERFORM game.invalid_argument('language', remember_card_photo.language,
            format('language must be one of %s', array_to_string(game.languages(), ', ')));
    END IF;
    -- Only the template's rarity now: a card drawn for another one is stale already.
    IF remember_card_photo.rarity IS DISTINCT FROM known_rarity THEN
        PERFORM game.invalid_argument('rarity', remember_card_photo.rarity,
            format('the template''s rarity is %s', known_rarity));
    END IF;
    IF remember_card_photo.design IS NULL OR remember_card_photo.design !~ '^[0-9a-f]{8,64}$' THEN
        PERFORM game.invalid_argument('design', remember_card_photo.design, 'design must be 8..64 hex digits');
    END IF;
    -- Telegram's file_ids are URL-safe base64; anything else is not one (and is not stored).
    IF remember_card_photo.file_id IS NULL OR remember_card_photo.file_id !~ '^[A-Za-z0-9_-]{16,200}$' THEN
        PERFORM game.invalid_argument('file_id', remember_card_photo.file_id,
            'file_id must be 16..200 characters of A-Z a-z 0-9 _ -');
    END IF;
    IF NOT EXISTS (SELECT FROM game.card_photos AS x WHERE x.bot_id = remember_card_photo.bot_id)
       AND (SELECT count(DISTINCT x.bot_id) FROM game.card_photos AS x) >= game.card_photo_bots() THEN
        PERFORM game.refuse('WF008', format('card photos of %s bots are cached already', game.card_photo_bots()),
                            jsonb_build_object('limit', 'card_photo_bots', 'max', game.card_photo_bots()));
    END IF;
    INSERT INTO game.card_photos AS x (bot_id, template_code, language, rarity, design, file_id, cached_at)
    VALUES (remember_card_photo.bot_id, remember_card_photo.template_code, remember_card_photo.language,
            known_rarity, remember_card_photo.design, remember_card_photo.file_id, now())
    ON CONFLICT ON CONSTRAINT card_photos_pkey DO UPDATE
        SET rarity = excluded.rarity, design = excluded.design, file_id = excluded.file_id,
            cached_at = excluded.cached_at
    RETURNING x.* INTO c;
    RETURN jsonb_build_object('bot_id', c.bot_id, 'template_code', c.template_code, 'language', c.language,
                              'rarity', c.rarity, 'design', c.design, 'file_id', c.file_id);
END
$$;
COMMENT ON FUNCTION api.remember_card_photo(bigint, text, text, text, text, text) IS
$$Keep the file_id Telegram gave the stat card's picture of a template (for this bot, language, the template's
current rarity and the picture's design), replacing the one before (e.g. one Telegram no longer accepts).
Returns the row as stored. Errors: WF006 unknown template or language, a rarity not the template's, design not
8..64 hex digits, file_id not 16..200 URL-safe base64 characters; WF008 card photos of 8 other bots cached.$$;
REVOKE ALL ON FUNCTION api.remember_card_photo(bigint, text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.remember_card_photo(bigint, text, text, text, text, text) TO waifu_bot;

CREATE VIEW ops.card_photos AS
SELECT c.bot_id, c.template_code, c.language, c.rarity, c.design, c.file_id, c.cached_at
FROM game.card_photos AS c
ORDER BY c.bot_id, c.template_code, c.language;
COMMENT ON VIEW ops.card_photos IS 'Cached Telegram file_ids of the stat cards'' pictures (per bot, template, language).';
GRANT SELECT ON ops.card_photos TO waifu_ops;

CREATE FUNCTION ops.forget_card_photos(bot_id bigint DEFAULT NULL) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM game.card_photos AS c WHERE forget_card_photos.bot_id IS NULL OR c.bot_id = forget_card_photos.bot_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ops.forget_card_photos(bigint) IS
$$Forget cached stat card photos (of one bot, or NULL: all): the bot uploads each picture again on its next use.
For a retired bot, or after changing the cards' look without changing their design digest. Returns rows deleted.
Example: SELECT ops.forget_card_photos(123456);$$;
REVOKE ALL ON FUNCTION ops.forget_card_photos(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.forget_card_photos(bigint) TO waifu_ops;

-- Groups' language -------------------------------------------------------------------------------

ALTER TABLE game.groups ADD COLUMN language text CHECK (language = ANY (game.languages()));
COMMENT ON COLUMN game.groups.language IS
    'The language of messages to the whole group (api.set_group_language); NULL: the bot''s default.';

CREATE FUNCTION api.set_group_language(chat_id bigint, telegram_id bigint, language text, is_admin boolean,
                                       now timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    at timestamptz := game.checked_now(set_group_language.now);
    p game.players;
    chosen text := set_group_language.language;
    g game.groups;
    changed integer;
BEGIN
    PERFORM game.check_chat_id(set_group_language.chat_id);
    p := game.require_player(set_group_language.telegram_id);
    IF chosen IS NOT NULL AND NOT chosen = ANY (game.languages()) THEN
        PERFORM game.invalid_argument('language', chosen,
            format('language must be one of %s', array_to_string(game.languages(), ', ')));
    END IF;
    PERFORM game.require_member(set_group_language.chat_id, set_group_language.telegram_id);
    -- As for group events: the bot asked Telegram whether the caller administers the group.
    IF set_group_language.is_admin IS NOT TRUE THEN
        PERFORM game.refuse('WF014', 'only an administrator of the group may choose its language',
                            jsonb_build_object('chat_id', set_group_language.chat_id,
                                               'telegram_id', set_group_language.telegram_id));
    END IF;
    -- NULL: the admin's own language, for a group that has none yet (/group_events on).
    UPDATE game.groups AS x
    SET language = coalesce(chosen, game.effective_language(p.language, p.language_code)), updated_at = at
    WHERE x.chat_id = set_group_language.chat_id
      AND (chosen IS NOT NULL OR x.language IS NULL)
      AND x.language IS DISTINCT FROM coalesce(chosen, game.effective_language(p.language, p.language_code));
    GET DIAGNOSTICS changed = ROW_COUNT;
    SELECT * INTO g FROM game.groups AS x WHERE x.chat_id = set_group_language.chat_id;
    RETURN jsonb_build_object('chat_id', g.chat_id, 'language', g.language, 'changed', changed > 0);
END
$$;
COMMENT ON FUNCTION api.set_group_language(bigint, bigint, text, boolean, timestamptz) IS
$$Choose the language of a group's messages (/group_language en|ru, by an administrator). language NULL: the
caller's own language, only if the group has none yet (the bot does this on /group_events on). is_admin: the
bot's answer from Telegram. Returns {chat_id, language, changed}.
Errors: WF005 not registered; WF006 bad argument (unknown language); WF012 not a member; WF014 not an admin.$$;
REVOKE ALL ON FUNCTION api.set_group_language(bigint, bigint, text, boolean, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.set_group_language(bigint, bigint, text, boolean, timestamptz) TO waifu_bot;

CREATE FUNCTION api.group_languages(chat_ids bigint[]) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF group_languages.chat_ids IS NULL OR cardinality(group_languages.chat_ids) > 100
       OR array_position(group_languages.chat_ids, NULL) IS NOT NULL THEN
        PERFORM game.invalid_argument('chat_ids', 'chat_ids must be at most 100 group chat ids, none NULL',
                                      jsonb_build_object('count', cardinality(group_languages.chat_ids)));
    END IF;
    -- An array, not an object keyed by chat: behind PL/Proxy (db/partitions.py) the answers of
    -- every partition are concatenated.
    RETURN coalesce((SELECT jsonb_agg(jsonb_build_object('chat_id', g.chat_id, 'language', g.language)
                                      ORDER BY g.chat_id)
                     FROM game.groups AS g
                     WHERE g.chat_id = ANY (group_languages.chat_ids) AND g.language IS NOT NULL), '[]'::jsonb);
END
$$;
COMMENT ON FUNCTION api.group_languages(bigint[]) IS
$$The languages of up to 100 groups, [{chat_id, language}, ...]; a group with none (or unknown) is left out: the
bot's default. The group sender asks it once per batch of claimed messages. Errors: WF006 bad argument.$$;
REVOKE ALL ON FUNCTION api.group_languages(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.group_languages(bigint[]) TO waifu_bot, waifu_ops;

-- When each pg_cron job counts as stalled -----------------------------------------------------------

CREATE TABLE game.cron_expectations (
    jobname text PRIMARY KEY,
    stalled_after interval NOT NULL CHECK (stalled_after > interval '0')
);
COMMENT ON TABLE game.cron_expectations IS
$$How long after its last start each pg_cron job counts as stalled in ops.cron_jobs (about three of its periods,
so one slow or skipped run is not an alarm). Change with ops.set_cron_expectation.$$;
INSERT INTO game.cron_expectations (jobname, stalled_after) VALUES
    ('restore-energy', '3 minutes'),       -- every minute
    ('group-events', '3 minutes'),         -- every minute
    ('leaderboard-steps', '15 minutes'),   -- every 5 minutes
    ('purge-rate-limits', '15 minutes'),   -- every 5 minutes
    ('ledger-partitions', '3 hours'),      -- hourly
    ('purge-player-history', '3 hours'),   -- hourly
    ('coin-ledger-retention', '3 hours'),  -- hourly (below)
    ('purge-cron-history', '3 days');      -- daily
GRANT SELECT ON game.cron_expectations TO waifu_ops;

CREATE FUNCTION ops.set_cron_expectation(jobname text, stalled_after interval) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM game.check_text('jobname', set_cron_expectation.jobname, 64, true);
    IF set_cron_expectation.stalled_after IS NOT NULL
       AND NOT set_cron_expectation.stalled_after BETWEEN interval '1 minute' AND interval '28 days' THEN
        PERFORM game.invalid_argument('stalled_after', set_cron_expectation.stalled_after::text,
                                      'stalled_after must be between 1 minute and 4 weeks (or NULL: never)');
    END IF;
    IF set_cron_expectation.stalled_after IS NULL THEN
        DELETE FROM game.cron_expectations AS e WHERE e.jobname = set_cron_expectation.jobname;
    ELSE
        INSERT INTO game.cron_expectations AS e (jobname, stalled_after)
        VALUES (set_cron_expectation.jobname, set_cron_expectation.stalled_after)
        ON CONFLICT ON CONSTRAINT cron_expectations_pkey DO UPDATE SET stalled_after = excluded.stalled_after;
    END IF;
    RETURN jsonb_build_object('jobname', set_cron_expectation.jobname,
                              'stalled_after', set_cron_expectation.stalled_after);
END
$$;
COMMENT ON FUNCTION ops.set_cron_expectation(text, interval) IS
$$Set after how long without a start a pg_cron job shows as `stalled` in ops.cron_jobs (1 minute..28 days; NULL:
never). Returns {jobname, stalled_after}. Example: SELECT ops.set_cron_expectation('group-events', '5 minutes');
Errors: WF006 bad argument.$$;
REVOKE ALL ON FUNCTION ops.set_cron_expectation(text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_cron_expectation(text, interval) TO waifu_ops;

-- The same columns as before (0006), then stalled_after; health reads the expectations.
CREATE OR REPLACE VIEW ops.cron_jobs AS
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
           WHEN last.start_time < now() - e.stalled_after THEN 'stalled'
           ELSE 'ok'
       END AS health,
       e.stalled_after
FROM cron.job AS j
LEFT JOIN game.cron_expectations AS e ON e.jobname = j.jobname
LEFT JOIN LATERAL (
    SELECT d.start_time, d.end_time, d.status, d.return_message
    FROM cron.job_run_details AS d
    WHERE d.jobid = j.jobid
    ORDER BY d.start_time DESC NULLS LAST
    LIMIT 1) AS last ON true;
COMMENT ON VIEW ops.cron_jobs IS
$$pg_cron jobs, the role each runs as, their last run and failure counts; health: ok | failing | stalled (no start
for stalled_after, game.cron_expectations) | never ran | inactive.$$;

-- The coin ledger's retention ---------------------------------------------------------------------

ALTER TABLE game.coin_ledger DROP CONSTRAINT coin_ledger_reason_check,
    ADD CONSTRAINT coin_ledger_reason_check
        CHECK (reason IN ('event', 'daily', 'purchase', 'group_event', 'correction', 'opening'));
COMMENT ON TABLE game.coin_ledger IS
$$Every change of a player's coins, written with it: delta, the balance after it, why (event, daily, purchase,
group_event, correction) and what (the request key, or the group event's id). Rows older than
game.config.ledger_retention are folded per player into one `opening` row (their summed delta, the balance after
the last, its id and time): the sum of a player's deltas is always their wallet.$$;
-- The rows go in roughly in time order: a BRIN index finds the old ones for a few pages.
CREATE INDEX coin_ledger_at_brin ON game.coin_ledger USING brin (at);

CREATE FUNCTION game.trim_coin_ledger(batch_size integer DEFAULT 5000) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz := now() - (SELECT c.ledger_retention FROM game.config AS c);
    players_done bigint := 0::bigint;
    rows_folded bigint := 0::bigint;
    n bigint;
    m bigint;
BEGIN
    IF trim_coin_ledger.batch_size IS NULL OR trim_coin_ledger.batch_size NOT BETWEEN 1 AND 100000 THEN
        PERFORM game.invalid_argument('batch_size', trim_coin_ledger.batch_size::text,
                                      'batch_size must be between 1 and 100000');
    END IF;
    -- At most 20 batches a run: a backlog is worked off over a few hourly runs, none long.
    FOR i IN 1..20 LOOP
        -- One statement per batch: the old rows of these players go, their opening rows
        -- come, in the same snapshot (a concurrent earning adds a new row, touching neither).
        -- The opening row takes the id of the last row it folds, so ids stay in order.
        WITH chosen AS (
            SELECT DISTINCT l.telegram_id FROM game.coin_ledger AS l
            WHERE l.at < cutoff AND l.reason <> 'opening'
            LIMIT trim_coin_ledger.batch_size
        ), folded AS (
            DELETE FROM game.coin_ledger AS l
            USING chosen
            WHERE l.telegram_id = chosen.telegram_id AND l.at < cutoff
            RETURNING l.*
        ), opening AS (
            SELECT f.telegram_id, max(f.id) AS id, sum(f.delta) AS delta, count(*) AS rows_folded,
                   (array_agg(f.balance ORDER BY f.id DESC))[1] AS balance,
                   (array_agg(f.at ORDER BY f.id DESC))[1] AS at
            FROM folded AS f GROUP BY f.telegram_id
        ), inserted AS (
            INSERT INTO game.coin_ledger (id, telegram_id, at, delta, balance, reason, ref)
            OVERRIDING SYSTEM VALUE
            SELECT o.id, o.telegram_id, o.at, o.delta, o.balance, 'opening', 'through ' || o.id
            FROM opening AS o WHERE o.delta <> 0
        )
        SELECT count(*), coalesce(sum(o.rows_folded), 0)::bigint INTO n, m FROM opening AS o;
        players_done := players_done + n;
        rows_folded := rows_folded + m;
        EXIT WHEN n < trim_coin_ledger.batch_size;
    END LOOP;
    RETURN jsonb_build_object('players', players_done, 'rows_folded', rows_folded, 'cutoff', cutoff);
END
$$;
COMMENT ON FUNCTION game.trim_coin_ledger(integer) IS
$$Fold each player's coin ledger rows older than game.config.ledger_retention into one `opening` row (sum of
deltas, balance after the last): wallets still equal their ledger sums. Up to 20 batches of batch_size players
per call. Run by pg_cron (job coin-ledger-retention, hourly, as waifu_cron). Returns {players, rows_folded, cutoff}.$$;
REVOKE ALL ON FUNCTION game.trim_coin_ledger(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION game.trim_coin_ledger(integer) TO waifu_cron, waifu_ops;

DO $$
BEGIN
    PERFORM cron.schedule_in_database('coin-ledger-retention', '41 * * * *', 'SELECT game.trim_coin_ledger()',
                                      current_database(), 'waifu_cron');
END
$$;
