-- What operators use from psql (GRANT waifu_ops TO <you>): event management, audited
-- stat corrections, and views of the game and of the pg_cron jobs.
-- depends: 0003.api

CREATE TABLE game.stat_corrections (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    waifu_id     bigint NOT NULL REFERENCES game.waifus ON DELETE CASCADE,
    stat         text NOT NULL,
    old_value    bigint NOT NULL,
    new_value    bigint NOT NULL,
    reason       text,
    corrected_by text NOT NULL DEFAULT session_user,
    corrected_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE game.stat_corrections IS 'Audit trail of ops.set_stat.';
CREATE INDEX stat_corrections_waifu_idx ON game.stat_corrections (waifu_id, corrected_at);

CREATE FUNCTION game.invalid_argument(argument text, value text, message text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION '%', invalid_argument.message
        USING ERRCODE = 'WF006',
              DETAIL = jsonb_build_object('argument', invalid_argument.argument, 'value', invalid_argument.value)::text;
END
$$;
COMMENT ON FUNCTION game.invalid_argument(text, text, text) IS 'Raises WF006 naming the argument.';

-- ops.create_event ---------------------------------------------------------------------
CREATE FUNCTION ops.create_event(code text, title text, energy_cost integer, xp_reward integer,
                                 mood_delta integer, loyalty_delta integer, cooldown interval,
                                 starts_at timestamptz DEFAULT NULL, ends_at timestamptz DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
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
    IF create_event.mood_delta IS NULL OR abs(create_event.mood_delta) > game.max_stat() THEN
        PERFORM game.invalid_argument('mood_delta', create_event.mood_delta::text,
            format('mood_delta must be between -%1$s and %1$s', game.max_stat()));
    END IF;
    IF create_event.loyalty_delta IS NULL OR abs(create_event.loyalty_delta) > game.max_stat() THEN
        PERFORM game.invalid_argument('loyalty_delta', create_event.loyalty_delta::text,
            format('loyalty_delta must be between -%1$s and %1$s', game.max_stat()));
    END IF;
    IF create_event.cooldown IS NULL OR create_event.cooldown < interval '0' THEN
        PERFORM game.invalid_argument('cooldown', create_event.cooldown::text, 'cooldown must be 0 or more');
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
            updated_at = pg_catalog.now()
    RETURNING ev.* INTO e;
    RETURN to_jsonb(e);
END
$$;
REVOKE ALL ON FUNCTION ops.create_event(text, text, integer, integer, integer, integer, interval, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.create_event(text, text, integer, integer, integer, integer, interval, timestamptz, timestamptz) TO waifu_ops;
COMMENT ON FUNCTION ops.create_event(text, text, integer, integer, integer, integer, interval, timestamptz, timestamptz) IS
$$Create an event, or replace every field of an existing one with that code (upsert).
code: a-z, 0-9, _ (1-32); energy_cost 0..100; xp_reward >= 0; mood_delta/loyalty_delta -100..100;
cooldown per waifu ('0' for none); optional window starts_at .. ends_at (null = open-ended).
Example: SELECT ops.create_event('picnic', 'Picnic', 15, 25, 5, 2, '1 hour');
Returns the event row as JSON. Errors: WF006 invalid argument (DETAIL names it).$$;

-- ops.close_event ----------------------------------------------------------------------
CREATE FUNCTION ops.close_event(code text, at timestamptz DEFAULT now()) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    e game.events;
BEGIN
    UPDATE game.events AS ev
    SET ends_at = close_event.at,
        starts_at = CASE WHEN ev.starts_at >= close_event.at THEN NULL ELSE ev.starts_at END,
        updated_at = pg_catalog.now()
    WHERE ev.code = close_event.code
    RETURNING ev.* INTO e;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event "%" does not exist', close_event.code
            USING ERRCODE = 'WF002', DETAIL = jsonb_build_object('event_code', close_event.code)::text;
    END IF;
    RETURN to_jsonb(e);
END
$$;
REVOKE ALL ON FUNCTION ops.close_event(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.close_event(text, timestamptz) TO waifu_ops;
COMMENT ON FUNCTION ops.close_event(text, timestamptz) IS
$$Close an event from `at` on (default now): players no longer see it. The ledger keeps its history.
Reopen with ops.create_event. Errors: WF002 no such event.$$;

-- ops.set_stat -------------------------------------------------------------------------
CREATE FUNCTION ops.set_stat(waifu_id bigint, stat text, value integer, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
    w game.waifus;
    current_stats jsonb;
    old_value bigint;
    high integer;
    at timestamptz := pg_catalog.now();
BEGIN
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
    SET dynamic = jsonb_set(jsonb_set(game.regen(x.dynamic, at), ARRAY[set_stat.stat], to_jsonb(set_stat.value)),
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
REVOKE ALL ON FUNCTION ops.set_stat(bigint, text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_stat(bigint, text, integer, text) TO waifu_ops;
COMMENT ON FUNCTION ops.set_stat(bigint, text, integer, text) IS
$$Correct one stat of a waifu by hand; recorded in game.stat_corrections (see ops.stat_corrections).
stat: xp | energy | mood | loyalty; value: 0..100 (energy, mood, loyalty) or >= 0 (xp).
Example: SELECT ops.set_stat(42, 'energy', 100, 'refund for outage #12');
Returns the stats (api.waifu_stats shape). Errors: WF006 bad stat or value; WF004 waifu not found.$$;

-- Views --------------------------------------------------------------------------------
CREATE VIEW ops.overview AS
SELECT (SELECT count(*) FROM game.players) AS players,
       (SELECT count(*) FROM game.waifus) AS waifus,
       (SELECT count(*) FROM game.waifus AS w
        WHERE (w.dynamic ->> 'energy')::integer < game.max_energy()) AS waifus_below_max_energy,
       (SELECT count(*) FROM game.participations AS p
        WHERE p.participated_at > now() - interval '24 hours') AS participations_24h,
       (SELECT count(*) FROM game.events AS e
        WHERE (e.starts_at IS NULL OR e.starts_at <= now()) AND (e.ends_at IS NULL OR now() < e.ends_at))
           AS open_events;
COMMENT ON VIEW ops.overview IS 'One-row summary: players, waifus, how many regenerate, activity in 24 h.';

CREATE VIEW ops.waifus AS
SELECT w.id AS waifu_id, w.owner_id, p.username, w.name,
       (s ->> 'level')::integer AS level, (s ->> 'xp')::bigint AS xp,
       (s ->> 'energy')::integer AS energy, (s ->> 'mood')::integer AS mood,
       (s ->> 'loyalty')::integer AS loyalty,
       (s ->> 'full_energy_at')::timestamptz AS full_energy_at,
       (w.dynamic ->> 'energy')::integer AS stored_energy,
       w.adopted_at
FROM game.waifus AS w
JOIN game.players AS p ON p.telegram_id = w.owner_id
CROSS JOIN LATERAL game.stats_json(w, game.regen(w.dynamic, now()), now()) AS s;
COMMENT ON VIEW ops.waifus IS 'Every waifu with effective stats now (stored_energy = what the table holds).';

CREATE VIEW ops.events AS
SELECT e.code, e.title, e.energy_cost, e.xp_reward, e.mood_delta, e.loyalty_delta, e.cooldown,
       e.starts_at, e.ends_at,
       (e.starts_at IS NULL OR e.starts_at <= now()) AND (e.ends_at IS NULL OR now() < e.ends_at) AS open_now,
       (SELECT count(*) FROM game.participations AS p WHERE p.event_code = e.code) AS participations
FROM game.events AS e;
COMMENT ON VIEW ops.events IS 'Events, whether each is open now, and how often it was played.';

CREATE VIEW ops.recent_participations AS
SELECT p.participated_at, p.telegram_id, p.waifu_id, p.event_code, p.energy_spent, p.xp_gained,
       p.mood_change, p.loyalty_change, p.request_key
FROM game.participations AS p
ORDER BY p.participated_at DESC
LIMIT 100;
COMMENT ON VIEW ops.recent_participations IS 'The last 100 participations, newest first.';

CREATE VIEW ops.stat_corrections AS
SELECT c.corrected_at, c.corrected_by, c.waifu_id, c.stat, c.old_value, c.new_value, c.reason
FROM game.stat_corrections AS c
ORDER BY c.corrected_at DESC;
COMMENT ON VIEW ops.stat_corrections IS 'Audit trail of ops.set_stat, newest first.';

-- pg_cron health: views are owned by the migration role, so waifu_ops can read them
-- without privileges on the cron schema.
CREATE VIEW ops.cron_jobs AS
SELECT j.jobid, j.jobname, j.schedule, j.command, j.active, j.username,
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
    'pg_cron jobs with their last run and failure counts; health: ok | failing | stalled | never ran | inactive.';

CREATE VIEW ops.cron_failures AS
SELECT j.jobname, d.start_time, d.end_time, d.return_message, d.command
FROM cron.job_run_details AS d
LEFT JOIN cron.job AS j ON j.jobid = d.jobid
WHERE d.status = 'failed'
ORDER BY d.start_time DESC
LIMIT 50;
COMMENT ON VIEW ops.cron_failures IS 'The last 50 failed pg_cron runs with their error.';

GRANT SELECT ON ALL TABLES IN SCHEMA ops TO waifu_ops;
GRANT SELECT ON game.stat_corrections TO waifu_ops;
-- A view checks EXECUTE on the functions it calls against its reader, not its owner:
-- operators need the pure rule functions that ops.waifus and ops.overview call.
GRANT EXECUTE ON FUNCTION game.max_energy(), game.max_stat(), game.energy_regen_seconds(),
    game.level_for_xp(bigint), game.level_start_xp(integer), game.regen(jsonb, timestamptz),
    game.stats_json(game.waifus, jsonb, timestamptz) TO waifu_ops;
