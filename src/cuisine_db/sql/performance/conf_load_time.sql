-- When this session last read the configuration files, and the time now (a reload reaches a session asynchronously).
SELECT pg_conf_load_time() AS loaded, clock_timestamp() AS now
