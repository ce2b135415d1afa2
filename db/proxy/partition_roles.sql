-- Roles on each partition (cluster-wide) through which the proxy calls it; their
-- passwords are set outside (db/partitions.py, docs/SCALING.md). Idempotent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_proxy') THEN
        CREATE ROLE waifu_proxy LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_proxy_noclock') THEN
        CREATE ROLE waifu_proxy_noclock LOGIN;
    END IF;
    GRANT waifu_bot, waifu_ops TO waifu_proxy, waifu_proxy_noclock;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_clock') THEN
        GRANT waifu_clock TO waifu_proxy;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA partition TO waifu_proxy, waifu_proxy_noclock;
GRANT SELECT ON partition.identity TO waifu_proxy, waifu_proxy_noclock;
GRANT EXECUTE ON FUNCTION partition.relation_rows(text), partition.status() TO waifu_proxy, waifu_proxy_noclock;
COMMENT ON ROLE waifu_proxy IS 'The PL/Proxy database calling this partition (clock overrides allowed).';
COMMENT ON ROLE waifu_proxy_noclock IS 'The PL/Proxy database calling for a caller without clock privileges.';
