-- ops.partitions: each partition's health, one partition at a time. Run inside the
-- generated part. Cluster 'waifu': db/partitions.py's CLUSTER.
CREATE FUNCTION partition_call.status(partition integer) RETURNS jsonb LANGUAGE plproxy
AS $plproxy$
    CLUSTER 'waifu';
    RUN ON partition;
    SELECT partition.status();
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.status(integer) FROM PUBLIC;
-- One partition at a time, so that a partition that is down is a row saying so rather
-- than an error for the whole view.
CREATE FUNCTION ops.partition_status() RETURNS SETOF jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := (SELECT count(*)::integer FROM pg_catalog.pg_foreign_server AS s, unnest(s.srvoptions) AS o
                  WHERE s.srvname = 'waifu' AND o ~ '^p[0-9]+=');
BEGIN
    FOR k IN 0 .. n - 1 LOOP
        BEGIN
            RETURN NEXT partition_call.status(k) || jsonb_build_object('slot', k);
        EXCEPTION WHEN OTHERS THEN
            RETURN NEXT jsonb_build_object('slot', k, 'error', SQLERRM);
        END;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ops.partition_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.partition_status() TO waifu_ops;
COMMENT ON FUNCTION ops.partition_status() IS
$$Proxy: one JSON object per partition slot (its identity or an error, catalogue digest, cron health, migrations).
One partition at a time, so that a partition that is down is a row saying so; see ops.partitions.$$;
CREATE VIEW ops.partitions AS
SELECT (s ->> 'slot')::integer AS partition,
       s ->> 'error' IS NULL AS reachable,
       s ->> 'error' AS error,
       (s ->> 'in_recovery')::boolean AS in_recovery,
       (s ->> 'partition')::integer = (s ->> 'slot')::integer AS identity_ok,
       s ->> 'catalogue_digest' AS catalogue_digest,
       min(s ->> 'catalogue_digest') OVER () = max(s ->> 'catalogue_digest') OVER ()
           AND count(s ->> 'catalogue_digest') OVER () = count(*) OVER () AS catalogue_same_everywhere,
       s -> 'cron' AS cron_health,
       s -> 'migrations' AS migrations
FROM ops.partition_status() AS s;
COMMENT ON VIEW ops.partitions IS
    'Each partition: reachable, catalogue digest (the same everywhere?), pg_cron job health, applied migrations.';
GRANT SELECT ON ops.partitions TO waifu_ops;
