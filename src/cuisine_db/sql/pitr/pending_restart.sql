-- how many settings wait for a restart to take effect
SELECT count(*) FROM pg_settings WHERE pending_restart
