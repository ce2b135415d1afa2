-- Game content in the player's language: translations of templates and events.
--
-- * The base columns (game.waifu_templates.name/description, game.events.title) are
--   English. game.template_translations and game.event_translations hold the other
--   languages; a text with no translation is read in English (field by field).
-- * Which language a player reads: game.effective_language(setting, language_code) - the
--   player's setting (players.language), else Telegram's language_code: ru, and be, kk,
--   ky (Russian is an official language there and most of their users read it) give
--   Russian; uk does not (many Ukrainians do not want to be addressed in Russian, and
--   can choose it in /settings); everything else English. bot/texts.py applies the same
--   rule before a player is registered (tests/core/test_i18n.py compares the two).
-- * Localized reads: the events list and a participation's event_title in the owner's
--   language; api.waifu_templates(language) for the starters; a waifu adopted is named
--   in her owner's language (her name is hers from then on). api.player_profile (hence
--   api.register_player) returns `language`; api.player_language(telegram_id) answers it
--   alone (the bot asks it once per player, then remembers).
-- * Operators add and change translations from psql: ops.set_template_translation,
--   ops.set_event_translation, ops.delete_translation; ops.translations lists every
--   translatable text and marks the missing ones.
--
-- Errors: WF006 invalid argument (unknown language, template or event; blank or too long text).
-- depends: 0007.players

-- Languages ---------------------------------------------------------------------------------
CREATE FUNCTION game.languages() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ARRAY['en', 'ru'];
COMMENT ON FUNCTION game.languages() IS
    'The languages the game speaks; English first (the base texts). Same list as players.language and bot/texts.py.';

CREATE FUNCTION game.effective_language(setting text, language_code text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN effective_language.setting = ANY (game.languages()) THEN effective_language.setting
        WHEN lower(split_part(effective_language.language_code, '-', 1)) IN ('ru', 'be', 'kk', 'ky') THEN 'ru'
        WHEN lower(split_part(effective_language.language_code, '-', 1)) = ANY (game.languages())
            THEN lower(split_part(effective_language.language_code, '-', 1))
        ELSE 'en' END;
COMMENT ON FUNCTION game.effective_language(text, text) IS
    'The language to use: the setting (en, ru), else from Telegram''s language_code (ru, be, kk, ky -> ru), else en.';

-- PL/pgSQL, not a SQL body: a SQL function with a sub-select is not inlined and is
-- planned again on every call; PL/pgSQL caches the plan per session.
CREATE FUNCTION game.player_language(telegram_id bigint) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN (SELECT game.effective_language(p.language, p.language_code)
            FROM game.players AS p WHERE p.telegram_id = player_language.telegram_id);
END
$$;
COMMENT ON FUNCTION game.player_language(bigint) IS 'The language a player reads (NULL if not registered).';

CREATE FUNCTION game.check_language(language text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF check_language.language IS NULL OR check_language.language = 'en'
       OR NOT check_language.language = ANY (game.languages()) THEN
        PERFORM game.invalid_argument('language', check_language.language,
            format('language must be one of %s (English is the base text itself)',
                   array_to_string((game.languages())[2:], ', ')));
    END IF;
END
$$;
COMMENT ON FUNCTION game.check_language(text) IS
    'Raises WF006 unless the language is one a translation may be written in (not English: the base text).';

-- Translations --------------------------------------------------------------------------------
CREATE TABLE game.template_translations (
    template_code text NOT NULL REFERENCES game.waifu_templates ON DELETE CASCADE,
    language      text NOT NULL CHECK (language ~ '^[a-z]{2,3}$' AND language <> 'en'),
    name          text NOT NULL CHECK (btrim(name) <> ''),
    description   text CHECK (btrim(description) <> ''),  -- NULL: the English description
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_code, language)
);
COMMENT ON TABLE game.template_translations IS
    'Names and descriptions of waifu templates in languages other than English. Edit with ops.set_template_translation.';

-- A key to game.events is fine here: only operators write translations (the ledger
-- avoids one because every participation would share-lock the event's row).
CREATE TABLE game.event_translations (
    event_code text NOT NULL REFERENCES game.events ON DELETE CASCADE,
    language   text NOT NULL CHECK (language ~ '^[a-z]{2,3}$' AND language <> 'en'),
    title      text NOT NULL CHECK (btrim(title) <> ''),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_code, language)
);
COMMENT ON TABLE game.event_translations IS
    'Event titles in languages other than English. Edit with ops.set_event_translation.';

GRANT SELECT ON game.template_translations, game.event_translations TO waifu_ops;

INSERT INTO game.template_translations (template_code, language, name, description) VALUES
    ('sakura', 'ru', 'Сакура', 'Весёлая и бесконечно любопытная: любое поручение превращает в приключение.'),
    ('yuki',   'ru', 'Юки',    'Спокойная и начитанная; помнит каждое твоё слово.'),
    ('akane',  'ru', 'Аканэ',  'Пылкая и азартная: вызовет тебя на состязание в чём угодно и обычно победит.'),
    ('hana',   'ru', 'Хана',   'Нежная садовница: разговаривает со своими растениями, а в хорошие дни и с тобой.'),
    ('rin',    'ru', 'Рин',    'Хитрая насмешница с мягким сердцем, которое она очень неумело прячет.');

INSERT INTO game.event_translations (event_code, language, title) VALUES
    ('walk',     'ru', 'Прогулка в парке'),
    ('cafe',     'ru', 'Свидание в кафе'),
    ('training', 'ru', 'Тренировка'),
    ('movie',    'ru', 'Вечер кино'),
    ('gift',     'ru', 'Сделать подарок');

-- Localized reads ------------------------------------------------------------------------------
-- From 0006; changed: the title in the owner's language.
CREATE OR REPLACE FUNCTION game.events_for(w game.waifus, at timestamptz) RETURNS jsonb
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    energy integer := (game.regen(events_for.w.dynamic, events_for.at) ->> 'energy')::integer;
    reader_language text := game.player_language(events_for.w.owner_id);
BEGIN
    -- PL/pgSQL rather than a SQL body: a SQL function with a sub-select is planned again
    -- on every call; PL/pgSQL caches the plan per session.
    RETURN (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                'code', e.code,
                'title', coalesce(tr.title, e.title),
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
        LEFT JOIN game.event_translations AS tr ON tr.event_code = e.code AND tr.language = reader_language
        WHERE game.event_is_open(e, events_for.at));
END
$$;
COMMENT ON FUNCTION game.events_for(game.waifus, timestamptz) IS
    'Open events with this waifu''s cooldowns, titled in her owner''s language.';

-- From 0006; changed: event_title in the player's language.
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
                'level_before', participation_json.p.level_before,
                'level_after', participation_json.p.level_after,
                'leveled_up', participation_json.p.level_after > participation_json.p.level_before),
            'replayed', participation_json.replayed);
END
$$;
COMMENT ON FUNCTION game.participation_json(game.waifus, jsonb, timestamptz, game.participations, text, boolean) IS
    'Answer of api.participate_in_event: stats card + {event_code, event_title (player''s language), request_key, '
    'participated_at, changes, replayed}.';

-- From 0006; changed: `language`.
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
        'language', game.effective_language(p.language, p.language_code),
        'registered_at', p.registered_at,
        'waifus', coalesce((
            SELECT jsonb_agg(game.stats_json(w, game.regen(w.dynamic, at), at) ORDER BY w.id)
            FROM game.waifus AS w
            WHERE w.owner_id = p.telegram_id), '[]'::jsonb));
END
$$;
COMMENT ON FUNCTION api.player_profile(bigint, timestamptz) IS
$$The player and every waifu's stats (effective as of now).
Returns {telegram_id, username, first_name, language_code, language, registered_at,
waifus: [api.waifu_stats shape]}; language: what the player reads (en, ru), from the
setting or else from language_code (game.effective_language).
Errors: WF005 not registered; WF006 a `now` the caller may not choose.$$;

CREATE FUNCTION api.player_language(telegram_id bigint) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM game.check_id('telegram_id', player_language.telegram_id);
    RETURN game.player_language(player_language.telegram_id);
END
$$;
REVOKE ALL ON FUNCTION api.player_language(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.player_language(bigint) TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.player_language(bigint) IS
$$The language a player reads: en or ru (their setting, else from Telegram's language_code); NULL if not registered.
Errors: WF006 telegram_id not positive.$$;

-- A new argument: the starters have no player to take the language from.
DROP FUNCTION api.waifu_templates();
CREATE FUNCTION api.waifu_templates(language text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((
        SELECT jsonb_agg(jsonb_build_object('code', t.code, 'name', coalesce(tr.name, t.name),
                                            'description', coalesce(tr.description, t.description))
                         ORDER BY coalesce(tr.name, t.name), t.code)
        FROM game.waifu_templates AS t
        LEFT JOIN game.template_translations AS tr
            ON tr.template_code = t.code AND tr.language = waifu_templates.language), '[]'::jsonb);
END
$$;
REVOKE ALL ON FUNCTION api.waifu_templates(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.waifu_templates(text) TO waifu_bot, waifu_ops;
COMMENT ON FUNCTION api.waifu_templates(text) IS
$$The starter waifus a player can adopt: [{code, name, description}], by name.
language (optional: en, ru): names and descriptions in it where translated, else English.$$;

-- From 0006; changed: the new waifu is named in her owner's language.
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
A player adopts each template once (a collection).
request_key (optional): the same key again returns the same waifu instead of a second one.
Errors: WF005 not registered; WF006 bad argument or unknown template; WF007 key used for another
template; WF008 template already adopted {template_code, waifu_id, limit}.$$;

-- ops: translations from psql ---------------------------------------------------------------
CREATE FUNCTION ops.set_template_translation(template_code text, language text, name text,
                                             description text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r game.template_translations;
BEGIN
    PERFORM game.check_language(set_template_translation.language);
    PERFORM game.check_text('name', set_template_translation.name, 64, true);
    PERFORM game.check_text('description', set_template_translation.description, 500, false);
    IF NOT EXISTS (SELECT 1 FROM game.waifu_templates AS t WHERE t.code = set_template_translation.template_code) THEN
        PERFORM game.invalid_argument('template_code', set_template_translation.template_code,
            format('unknown waifu template "%s"', set_template_translation.template_code));
    END IF;
    INSERT INTO game.template_translations AS tr (template_code, language, name, description)
    VALUES (set_template_translation.template_code, set_template_translation.language,
            set_template_translation.name, set_template_translation.description)
    ON CONFLICT ON CONSTRAINT template_translations_pkey DO UPDATE
        SET name = excluded.name, description = excluded.description, updated_at = now()
    RETURNING tr.* INTO r;
    RETURN to_jsonb(r);
END
$$;
REVOKE ALL ON FUNCTION ops.set_template_translation(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_template_translation(text, text, text, text) TO waifu_ops;
COMMENT ON FUNCTION ops.set_template_translation(text, text, text, text) IS
$$Add or change a waifu template's name and description in a language (upsert).
template_code: an existing template; language: ru (English is the template row itself); name: 1-64
characters; description: up to 500 (NULL: the English one is shown).
Adopted waifus keep the name they were given. Example:
SELECT ops.set_template_translation('sakura', 'ru', 'Сакура', 'Весёлая и любопытная.');
Returns the translation row as JSON. Errors: WF006 invalid argument (DETAIL names it).$$;

CREATE FUNCTION ops.set_event_translation(event_code text, language text, title text)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r game.event_translations;
BEGIN
    PERFORM game.check_language(set_event_translation.language);
    PERFORM game.check_text('title', set_event_translation.title, 200, true);
    IF NOT EXISTS (SELECT 1 FROM game.events AS e WHERE e.code = set_event_translation.event_code) THEN
        PERFORM game.invalid_argument('event_code', set_event_translation.event_code,
            format('unknown event "%s" (ops.create_event makes one)', set_event_translation.event_code));
    END IF;
    INSERT INTO game.event_translations AS tr (event_code, language, title)
    VALUES (set_event_translation.event_code, set_event_translation.language, set_event_translation.title)
    ON CONFLICT ON CONSTRAINT event_translations_pkey DO UPDATE
        SET title = excluded.title, updated_at = now()
    RETURNING tr.* INTO r;
    RETURN to_jsonb(r);
END
$$;
REVOKE ALL ON FUNCTION ops.set_event_translation(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_event_translation(text, text, text) TO waifu_ops;
COMMENT ON FUNCTION ops.set_event_translation(text, text, text) IS
$$Add or change an event's title in a language (upsert).
event_code: an existing event; language: ru (English is the event's own title); title: 1-200 characters.
Example: SELECT ops.set_event_translation('picnic', 'ru', 'Пикник');
Returns the translation row as JSON. Errors: WF006 invalid argument (DETAIL names it).$$;

CREATE FUNCTION ops.delete_translation(kind text, code text, language text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM game.check_language(delete_translation.language);
    IF delete_translation.kind = 'template' THEN
        DELETE FROM game.template_translations AS tr
        WHERE tr.template_code = delete_translation.code AND tr.language = delete_translation.language;
    ELSIF delete_translation.kind = 'event' THEN
        DELETE FROM game.event_translations AS tr
        WHERE tr.event_code = delete_translation.code AND tr.language = delete_translation.language;
    ELSE
        PERFORM game.invalid_argument('kind', delete_translation.kind, 'kind must be template or event');
    END IF;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION ops.delete_translation(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.delete_translation(text, text, text) TO waifu_ops;
COMMENT ON FUNCTION ops.delete_translation(text, text, text) IS
$$Remove a translation (the English text is shown again): kind 'template' or 'event', its code, the language.
Example: SELECT ops.delete_translation('event', 'picnic', 'ru');
Returns true if there was one. Errors: WF006 invalid kind or language.$$;

CREATE VIEW ops.translations AS
SELECT 'template' AS kind, t.code, l.language, 'name' AS field, t.name AS english, tr.name AS translated
FROM game.waifu_templates AS t
CROSS JOIN unnest((game.languages())[2:]) AS l(language)
LEFT JOIN game.template_translations AS tr ON tr.template_code = t.code AND tr.language = l.language
UNION ALL
SELECT 'template', t.code, l.language, 'description', t.description, tr.description
FROM game.waifu_templates AS t
CROSS JOIN unnest((game.languages())[2:]) AS l(language)
LEFT JOIN game.template_translations AS tr ON tr.template_code = t.code AND tr.language = l.language
UNION ALL
SELECT 'event', e.code, l.language, 'title', e.title, tr.title
FROM game.events AS e
CROSS JOIN unnest((game.languages())[2:]) AS l(language)
LEFT JOIN game.event_translations AS tr ON tr.event_code = e.code AND tr.language = l.language
ORDER BY 1, 2, 3, 4;
COMMENT ON VIEW ops.translations IS
    'Every translatable text with its translation per language; translated IS NULL: missing (English is shown).';
-- The view calls game.languages() as its reader.
GRANT SELECT ON ops.translations TO waifu_ops;
GRANT EXECUTE ON FUNCTION game.languages() TO waifu_ops;
