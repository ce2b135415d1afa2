-- Rows of the partitions' ops views and game tables, for the proxy's generated views.
-- Run inside the generated part. Cluster 'waifu': db/partitions.py's CLUSTER.
CREATE FUNCTION partition_call.relation_rows(relation text, OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE plproxy
AS $plproxy$
    CLUSTER 'waifu';
    RUN ON ALL;
    TARGET partition.relation_rows;
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.relation_rows(text) FROM PUBLIC;
CREATE FUNCTION partition_call.relation_rows_of_partition0(relation text, OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE plproxy
AS $plproxy$
    CLUSTER 'waifu';
    RUN ON 0;
    TARGET partition.relation_rows;
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.relation_rows_of_partition0(text) FROM PUBLIC;
-- What the views call: definer functions, so that operators need no USAGE on the PL/Proxy
-- servers (with it they could create user mappings of their own).
CREATE FUNCTION partition_call.rows(relation text, OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT r.partition, r.data FROM partition_call.relation_rows(relation) AS r;
    END;
CREATE FUNCTION partition_call.rows_of_partition0(relation text, OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT r.partition, r.data FROM partition_call.relation_rows_of_partition0(relation) AS r;
    END;
REVOKE ALL ON FUNCTION partition_call.rows(text), partition_call.rows_of_partition0(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION partition_call.rows(text), partition_call.rows_of_partition0(text) TO waifu_ops;
