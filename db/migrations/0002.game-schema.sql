-- The game's tables, its rules as pure functions, and a starter catalogue.
-- depends: 0001.foundation

-- The rules' constants live here and only here. They are IMMUTABLE so the planner
-- folds them into plans and the partial index below; changing one is a migration
-- that also rebuilds game.waifus_energy_due_idx.
CREATE FUNCTION game.max_energy() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 100;
COMMENT ON FUNCTION game.max_energy() IS 'Energy cap of every waifu.';

CREATE FUNCTION game.energy_regen_seconds() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 60;
COMMENT ON FUNCTION game.energy_regen_seconds() IS 'Seconds per +1 energy.';

CREATE FUNCTION game.max_stat() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 100;
COMMENT ON FUNCTION game.max_stat() IS 'Upper bound of mood and loyalty (lower bound 0).';

-- Level = 1 + floor(sqrt(xp / 100)); level L spans xp 100*(L-1)^2 .. 100*L^2 - 1.
-- Not STRICT: a STRICT SQL function is not inlined into the queries that call it.
CREATE FUNCTION game.level_for_xp(xp bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 1 + floor(sqrt(greatest(xp, 0)::numeric / 100))::integer;
COMMENT ON FUNCTION game.level_for_xp(bigint) IS 'Level for an XP total: 1 + floor(sqrt(xp / 100)).';

CREATE FUNCTION game.level_start_xp(level integer) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 100 * (level - 1)::bigint * (level - 1);
COMMENT ON FUNCTION game.level_start_xp(integer) IS 'XP at which a level starts: 100 * (level - 1)^2.';

CREATE TABLE game.players (
    telegram_id   bigint PRIMARY KEY CHECK (telegram_id > 0),
    username      text,
    first_name    text,
    language_code text,
    registered_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE game.players IS 'Telegram users who started the bot.';

CREATE TABLE game.waifu_templates (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z0-9_]{1,32}$'),
    name        text NOT NULL CHECK (name <> ''),
    description text NOT NULL
);
COMMENT ON TABLE game.waifu_templates IS 'Starter characters a player can adopt.';

-- The shape every stored stats object must have. PL/pgSQL so that a CHECK using it is
-- not re-planned with seven inlined constants on every statement (half the CPU of a
-- single-row UPDATE, measured). NULL (a missing key) counts as invalid.
CREATE FUNCTION game.dynamic_is_valid(dynamic jsonb) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN coalesce(
        jsonb_typeof(dynamic_is_valid.dynamic -> 'xp') = 'number'
        AND jsonb_typeof(dynamic_is_valid.dynamic -> 'energy') = 'number'
        AND jsonb_typeof(dynamic_is_valid.dynamic -> 'mood') = 'number'
        AND jsonb_typeof(dynamic_is_valid.dynamic -> 'loyalty') = 'number'
        AND jsonb_typeof(dynamic_is_valid.dynamic -> 'last_restore') = 'number'
        AND (dynamic_is_valid.dynamic ->> 'xp')::bigint >= 0
        AND (dynamic_is_valid.dynamic ->> 'energy')::integer BETWEEN 0 AND game.max_energy()
        AND (dynamic_is_valid.dynamic ->> 'mood')::integer BETWEEN 0 AND game.max_stat()
        AND (dynamic_is_valid.dynamic ->> 'loyalty')::integer BETWEEN 0 AND game.max_stat(),
        false);
END
$$;
COMMENT ON FUNCTION game.dynamic_is_valid(jsonb) IS
    'True if a stats object has integer xp >= 0, energy 0..max_energy, mood/loyalty 0..max_stat and a clock.';

-- dynamic holds the stats: {"xp", "energy", "mood", "loyalty": integers,
-- "last_restore": epoch seconds (numeric, microsecond precision) of the energy clock}.
-- Epoch numbers, not ISO text, so the clock can be indexed.
CREATE TABLE game.waifus (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES game.players ON DELETE CASCADE,
    template_code text NOT NULL REFERENCES game.waifu_templates,
    name          text NOT NULL,
    dynamic       jsonb NOT NULL,
    adopt_key     text,
    adopted_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT waifus_adopt_key_once UNIQUE (owner_id, adopt_key),
    -- Last line of defence: no function may ever store an impossible stat.
    CONSTRAINT waifus_dynamic_valid CHECK (game.dynamic_is_valid(dynamic))
);
COMMENT ON TABLE game.waifus IS 'Waifus owned by players; stats in the JSONB column dynamic.';
COMMENT ON COLUMN game.waifus.dynamic IS
    '{xp, energy, mood, loyalty: int; last_restore: epoch seconds of the energy clock}. '
    'Stored energy may lag; read it through game.regen() or the api functions.';
-- A player's waifus are found through waifus_adopt_key_once (owner_id first); a
-- separate owner index would only cost every write (measured: ~10% of a restore tick).
-- Every tick rewrites the regenerating waifus (no update of `dynamic` can be HOT), and
-- the tick's bitmap scan keeps visiting the dead versions until a VACUUM: measured, the
-- CPU of a no-due tick grew from 50 to 190 ms over 8 unvacuumed ticks on 1M waifus. The
-- default (vacuum at 20% dead) waits about four ticks at 5% regenerating; 2% vacuums
-- after about every tick.
ALTER TABLE game.waifus SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
-- Only waifus below the cap, ordered by their clock: a restore tick reads just the due ones.
CREATE INDEX waifus_energy_due_idx ON game.waifus (((dynamic ->> 'last_restore')::numeric))
    WHERE (dynamic ->> 'energy')::integer < game.max_energy();

CREATE TABLE game.events (
    code          text PRIMARY KEY CHECK (code ~ '^[a-z0-9_]{1,32}$'),
    title         text NOT NULL CHECK (title <> ''),
    energy_cost   integer NOT NULL CHECK (energy_cost BETWEEN 0 AND game.max_energy()),
    xp_reward     integer NOT NULL CHECK (xp_reward >= 0),
    mood_delta    integer NOT NULL CHECK (mood_delta BETWEEN -game.max_stat() AND game.max_stat()),
    loyalty_delta integer NOT NULL CHECK (loyalty_delta BETWEEN -game.max_stat() AND game.max_stat()),
    cooldown      interval NOT NULL DEFAULT '0' CHECK (cooldown >= '0'),
    starts_at     timestamptz,
    ends_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
COMMENT ON TABLE game.events IS 'Things a waifu can take part in. Manage with ops.create_event / ops.close_event.';

-- The ledger: one row per applied participation, keyed by the player's request key
-- so a retried action is recognised and answered from here.
-- Only waifu_id is a foreign key: its row is already locked by the participation. A
-- key on event_code would take a share lock on the hot events row in every call
-- (multixact churn under load); events are never deleted (ops.close_event ends them).
-- telegram_id is the waifu's owner, so a player's deletion cascades through game.waifus.
CREATE TABLE game.participations (
    telegram_id     bigint NOT NULL,
    waifu_id        bigint NOT NULL REFERENCES game.waifus ON DELETE CASCADE,
    event_code      text NOT NULL,
    request_key     text NOT NULL,
    participated_at timestamptz NOT NULL,
    energy_spent    integer NOT NULL,
    xp_gained       integer NOT NULL,
    mood_change     integer NOT NULL,
    loyalty_change  integer NOT NULL,
    result          jsonb NOT NULL,
    CONSTRAINT participations_request_once PRIMARY KEY (telegram_id, request_key)
);
COMMENT ON TABLE game.participations IS 'Ledger of applied participations (changes as applied, after clamping).';
CREATE INDEX participations_cooldown_idx ON game.participations (waifu_id, event_code, participated_at DESC);

-- Energy regeneration, the one rule: +1 per whole interval since last_restore, up to
-- the cap. The clock advances by exactly the intervals used, so partial ones carry
-- over; at the cap it stops. Pure SQL with one expression so the planner inlines it
-- into a set-based UPDATE.
CREATE FUNCTION game.regen(dynamic jsonb, at timestamptz) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
    WHEN (dynamic ->> 'energy')::integer >= game.max_energy()
      OR extract(epoch FROM at) - (dynamic ->> 'last_restore')::numeric < game.energy_regen_seconds()
    THEN dynamic
    ELSE jsonb_set(jsonb_set(dynamic,
        '{energy}', to_jsonb(least(game.max_energy(),
            (dynamic ->> 'energy')::integer
            + floor((extract(epoch FROM at) - (dynamic ->> 'last_restore')::numeric)
                    / game.energy_regen_seconds())::integer))),
        '{last_restore}', to_jsonb((dynamic ->> 'last_restore')::numeric
            + game.energy_regen_seconds() * least(game.max_energy() - (dynamic ->> 'energy')::integer,
                floor((extract(epoch FROM at) - (dynamic ->> 'last_restore')::numeric)
                      / game.energy_regen_seconds())::integer)))
END;
COMMENT ON FUNCTION game.regen(jsonb, timestamptz) IS
    'Stats with the energy restored as of `at` (pure; stores nothing).';

-- Taking part in an event, applied to stats already regenerated to `at`: pay the
-- cost, add XP, move mood/loyalty clamped to 0..max_stat. A waifu that was full starts
-- its clock now; one already regenerating keeps its clock (no progress thrown away).
CREATE FUNCTION game.apply_event(dynamic jsonb, e game.events, at timestamptz) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(dynamic,
    '{energy}', to_jsonb((dynamic ->> 'energy')::integer - e.energy_cost)),
    '{xp}', to_jsonb((dynamic ->> 'xp')::bigint + e.xp_reward)),
    '{mood}', to_jsonb(least(game.max_stat(), greatest(0, (dynamic ->> 'mood')::integer + e.mood_delta)))),
    '{loyalty}', to_jsonb(least(game.max_stat(), greatest(0, (dynamic ->> 'loyalty')::integer + e.loyalty_delta)))),
    '{last_restore}', CASE WHEN (dynamic ->> 'energy')::integer >= game.max_energy()
                           THEN to_jsonb(extract(epoch FROM at))
                           ELSE dynamic -> 'last_restore' END);
COMMENT ON FUNCTION game.apply_event(jsonb, game.events, timestamptz) IS
    'Stats after taking part in event e (input must be regenerated to `at`).';

CREATE FUNCTION game.new_dynamic(at timestamptz) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object('xp', 0, 'energy', game.max_energy(), 'mood', 50, 'loyalty', 50,
                          'last_restore', extract(epoch FROM at));
COMMENT ON FUNCTION game.new_dynamic(timestamptz) IS 'Stats of a newly adopted waifu.';

-- The stats card every read and action returns. `dynamic` must already be regenerated to `at`.
-- PL/pgSQL, not a SQL body: a SQL function with a sub-select is never inlined and is
-- planned again on every call, which was most of the cost of a read (measured:
-- api.player_profile with two waifus ~290 us as SQL, ~45 us as PL/pgSQL).
CREATE FUNCTION game.stats_json(w game.waifus, dynamic jsonb, at timestamptz) RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    xp bigint := (stats_json.dynamic ->> 'xp')::bigint;
    level integer := game.level_for_xp(xp);
    energy integer := (stats_json.dynamic ->> 'energy')::integer;
    clock numeric := (stats_json.dynamic ->> 'last_restore')::numeric;
BEGIN
    RETURN jsonb_build_object(
        'waifu_id', stats_json.w.id,
        'owner_id', stats_json.w.owner_id,
        'name', stats_json.w.name,
        'template_code', stats_json.w.template_code,
        'xp', xp,
        'level', level,
        'level_xp', game.level_start_xp(level),
        'next_level_xp', game.level_start_xp(level + 1),
        'energy', energy,
        'max_energy', game.max_energy(),
        'max_stat', game.max_stat(),
        'mood', (stats_json.dynamic ->> 'mood')::integer,
        'loyalty', (stats_json.dynamic ->> 'loyalty')::integer,
        'next_energy_at', CASE WHEN energy < game.max_energy()
            THEN to_timestamp((clock + game.energy_regen_seconds())::double precision) END,
        'full_energy_at', CASE WHEN energy < game.max_energy()
            THEN to_timestamp((clock + game.energy_regen_seconds() * (game.max_energy() - energy))::double precision) END,
        'as_of', stats_json.at);
END
$$;
COMMENT ON FUNCTION game.stats_json(game.waifus, jsonb, timestamptz) IS
    'Stats card of a waifu (the shape api.waifu_stats returns).';

GRANT SELECT ON ALL TABLES IN SCHEMA game TO waifu_ops;

INSERT INTO game.waifu_templates (code, name, description) VALUES
    ('sakura', 'Sakura', 'Cheerful and endlessly curious; she turns every errand into an adventure.'),
    ('yuki',   'Yuki',   'Calm and bookish; she remembers every word you ever said to her.'),
    ('akane',  'Akane',  'Fiery and competitive; she will race you to anything, and usually win.'),
    ('hana',   'Hana',   'A gentle gardener who talks to her plants and, on good days, to you.'),
    ('rin',    'Rin',    'A sly tease with a soft heart she hides very badly.');

INSERT INTO game.events (code, title, energy_cost, xp_reward, mood_delta, loyalty_delta, cooldown) VALUES
    ('walk',     'Walk in the park', 10, 15,  4, 1, '0'),
    ('cafe',     'Cafe date',        20, 35,  8, 4, '30 minutes'),
    ('training', 'Training session', 30, 60, -6, 3, '1 hour'),
    ('movie',    'Movie night',      25, 45,  6, 6, '2 hours'),
    ('gift',     'Give a gift',       5, 10, 10, 5, '4 hours');
