async def test_database_is_migrated(admin, bot_conn):
    profile = await bot_conn.fetchval("SELECT api.register_player(7, 'u', 'U', 'en')")
    assert profile["telegram_id"] == 7 and profile["waifus"] == []
    assert await admin.fetchval("SELECT count(*) FROM cron.job WHERE jobname = 'restore-energy'") == 1
